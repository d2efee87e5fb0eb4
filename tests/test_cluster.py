"""The hint after a cluster job killed at a limit (scorew2.cluster), on logs in the format
Snakemake 9 and the SLURM executor plugin write (.ci/slurm_faults.sh checks the real thing)."""

from __future__ import annotations

import io
from pathlib import Path

from scorew2.cluster import LIMITS, explain_failure, find_limit_kills, limit_hint

RULE_ERROR = """\
Job 4 has been submitted with SLURM jobid 3 (log: {slurm_log}).
[Wed Dec  2 08:05:42 2026]
Error in rule train:
    message: SLURM-job '3' failed, SLURM status is: '{state}'. Detailed failure reason \
unavailable (status command is not 'sacct').
    jobid: 4
    input: r/data/moons.npz
    output: r/runs/loglog/moons/train_T10/checkpoints.pt
    log: r/logs/train/loglog/moons/T10.log, {slurm_log} (check log file(s) for error details)
    external_jobid: 3
Logfile r/logs/train/loglog/moons/T10.log: empty file
Shutting down, this might take some time.
"""

GROUP_ERROR = """\
Error in group eval:
    message: SLURM-job '21' failed, SLURM status is: 'TIMEOUT'. Detailed failure reason \
unavailable (status command is not 'sacct').
    log: {slurm_log} (check log file(s) for error details)
    jobs:
        rule sample:
            jobid: 7
            output: r/runs/loglog/moons/none/T10/samples.npz
            log: r/logs/sample/loglog/moons/none/T10.log (check log file(s) for error details)
        rule w2:
            jobid: 9
            output: r/runs/loglog/moons/none/T10/w2.csv
            log: r/logs/w2/loglog/moons/none/T10.log (check log file(s) for error details)
Exiting because a job execution failed. Look above for error messages
"""

CGROUP_OOM = (
    "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=5.batch. Some of your "
    "processes may have been killed by the cgroup out-of-memory handler.\n"
)
OOM = (
    "slurmstepd-vm: error: StepId=3.0 exceeded memory limit (358178816 > 209715200), being "
    "killed\nslurmstepd-vm: error: Exceeded job memory limit\n"
)
TIME = "slurmstepd: error: *** JOB 3 ON vm CANCELLED AT 2026-12-02T08:07:01 DUE TO TIME LIMIT ***\n"


def slurm_log(tmp_path: Path, text: str) -> str:
    path = tmp_path / "3.log"
    path.write_text("Building DAG of jobs...\n" + text)
    return str(path)


def test_memory_kill_read_off_the_slurm_log(tmp_path: Path) -> None:
    log = RULE_ERROR.format(slurm_log=slurm_log(tmp_path, OOM), state="FAILED")
    (kill,) = find_limit_kills(log)
    assert (kill.unit, kill.rules, kill.slurm_job, kill.limit.name) == (
        "train",
        ("train",),
        "3",
        "memory",
    )
    hint = limit_hint(kill)
    assert "train (SLURM job 3) was killed at its memory limit" in hint
    assert "`mem_mb` (MB)" in hint and "--set-resources train:mem_mb=..." in hint
    assert "profiles/slurm/profile.yaml" in hint


def test_cgroup_oom_kill_is_a_memory_kill(tmp_path: Path) -> None:
    log = RULE_ERROR.format(slurm_log=slurm_log(tmp_path, CGROUP_OOM), state="OUT_OF_MEMORY")
    assert [k.limit.name for k in find_limit_kills(log)] == ["memory"]
    log = RULE_ERROR.format(slurm_log=slurm_log(tmp_path, CGROUP_OOM), state="FAILED")
    assert [k.limit.name for k in find_limit_kills(log)] == ["memory"]


def test_time_kill_read_off_the_state_or_the_log(tmp_path: Path) -> None:
    by_state = RULE_ERROR.format(slurm_log=tmp_path / "gone.log", state="TIMEOUT")
    by_log = RULE_ERROR.format(slurm_log=slurm_log(tmp_path, TIME), state="CANCELLED")
    for log in (by_state, by_log):
        (kill,) = find_limit_kills(log)
        assert kill.limit.name == "time"
        assert "--set-resources train:runtime=..." in limit_hint(kill)
        assert "`runtime` (minutes)" in limit_hint(kill)


def test_group_kill_names_every_rule_of_the_group(tmp_path: Path) -> None:
    (kill,) = find_limit_kills(GROUP_ERROR.format(slurm_log=tmp_path / "21.log"))
    assert (kill.unit, kill.rules, kill.group, kill.slurm_job) == (
        "eval",
        ("sample", "w2"),
        True,
        "21",
    )
    hint = limit_hint(kill)
    assert hint.startswith("group eval (sample, w2) (SLURM job 21) was killed at its time limit")
    assert "--set-resources sample:runtime=... and w2:runtime=..." in hint


def test_other_failures_get_no_hint(tmp_path: Path) -> None:
    crashed = slurm_log(tmp_path, "Traceback (most recent call last):\nValueError: bad input\n")
    assert find_limit_kills(RULE_ERROR.format(slurm_log=crashed, state="FAILED")) == []
    cancelled = slurm_log(tmp_path, "slurmstepd: error: *** JOB 3 ON vm CANCELLED AT 08:07 ***\n")
    assert find_limit_kills(RULE_ERROR.format(slurm_log=cancelled, state="CANCELLED")) == []
    gpu = slurm_log(tmp_path, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate\n")
    assert find_limit_kills(RULE_ERROR.format(slurm_log=gpu, state="FAILED")) == []
    local = "Error in rule w2:\n    jobid: 3\n    log: x.log (check log file(s) for details)\n"
    assert find_limit_kills(local, read=lambda p: OOM) == []  # not a SLURM job


def test_each_killed_job_once_and_in_log_order(tmp_path: Path) -> None:
    first = RULE_ERROR.format(slurm_log=slurm_log(tmp_path, OOM), state="FAILED")
    again = first.replace("\n    external_jobid: 3\n", "\n    external_jobid: 3\n\n")
    group = GROUP_ERROR.format(slurm_log=tmp_path / "21.log")
    kills = find_limit_kills(first + group + again)
    assert [(k.unit, k.limit.name) for k in kills] == [("train", "memory"), ("eval", "time")]


def test_explain_failure_prints_one_line_per_kill(tmp_path: Path) -> None:
    run_log = tmp_path / "run.snakemake.log"
    run_log.write_text(RULE_ERROR.format(slurm_log=slurm_log(tmp_path, OOM), state="FAILED"))
    out = io.StringIO()
    assert explain_failure([str(run_log), str(tmp_path / "missing.log")], out=out) == 1
    (line,) = out.getvalue().splitlines()
    assert line.startswith("scorew2: train (SLURM job 3) was killed at its memory limit")
    assert explain_failure(str(tmp_path / "missing.log"), out=io.StringIO()) == 0


def test_limits_name_distinct_states_and_resources() -> None:
    assert sorted(lim.state for lim in LIMITS) == ["OUT_OF_MEMORY", "TIMEOUT"]
    assert sorted(lim.resource for lim in LIMITS) == ["mem_mb", "runtime"]
