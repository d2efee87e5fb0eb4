"""The README's result tables are generated from the committed tables, never typed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scorew2.generated import main
from scorew2.jobs import CPU_MARK
from scorew2.readme import dimsweep_block, render, runtimes_block, theorem3_block
from scorew2.tables import runtimes_table

REPO = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_committed_results() -> None:
    args = ["readme", "--target", str(REPO / "README.md"), "--source", str(REPO / "results/tables")]
    assert main([*args, "--check"]) == 0, "README is stale: run python -m scorew2.generated readme"


def test_a_changed_number_is_caught(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    tables.mkdir()
    src = REPO / "results" / "tables"
    claims = pd.read_csv(src / "claims.csv", keep_default_na=False)
    claims.to_csv(tables / "claims.csv", index=False)
    (tables / "runs.csv").write_bytes((src / "runs.csv").read_bytes())
    readme = render("a\n<!-- generated:claims -->\n\n<!-- /generated:claims -->\nb\n", tables)
    assert claims["evidence"].iloc[0] in readme and readme.startswith("a\n")
    assert render(readme, tables) == readme
    claims.loc[0, "verdict"] = "does not hold"
    claims.to_csv(tables / "claims.csv", index=False)
    assert render(readme, tables) != readme
    with pytest.raises(ValueError, match="unknown generated block 'fig9'"):
        render("<!-- generated:fig9 -->\n\n<!-- /generated:fig9 -->", tables)


def test_runtimes_block_sums_each_stage(tmp_path: Path) -> None:
    """Per experiment and stage the CPU seconds of its jobs, their total, the jobs' wall
    seconds; the last row their sums and the largest job's memory."""
    rows = [
        ("train", "a/x/T10", 12.0, 10.0, 100.0),
        ("w2", "a/x/none/T10", 3.0, 2.5, 300.0),
        ("w2", "a/x/spectral_norm/T10", 2.0, 1.5, 50.0),
        ("train", "b/x/T5", 5.0, 4.0, 700.0),
    ]
    pd.DataFrame(rows, columns=["rule", "job", "seconds", "cpu_seconds", "max_rss_mb"]).to_csv(
        tmp_path / "runtimes.csv", index=False
    )
    lines = runtimes_block(tmp_path).splitlines()
    assert lines[0] == "| experiment | train | w2 | all jobs | jobs' wall s | largest job (MB) |"
    assert lines[2:] == [
        "| a | 10 | 4 | 14 | 17 | 300 |",
        "| b | 4 | 0 | 4 | 5 | 700 |",
        "| all experiments | 14 | 4 | 18 | 22 | 700 |",
    ]


def test_runtimes_table_reads_wall_time_and_the_logged_cpu_time_of_each_job(
    tmp_path: Path,
) -> None:
    """One row per Snakemake benchmark file: rule and job from its path, ``s`` as seconds,
    ``max_rss`` as max_rss_mb, and cpu_seconds from the last CPU line of the job's log (not
    the benchmark's sampled cpu_time); a log without that line is refused, naming it."""
    bench, logs = tmp_path / "benchmarks", tmp_path / "logs"
    f = bench / "w2" / "a" / "shift0.05" / "T10.tsv"
    f.parent.mkdir(parents=True)
    f.write_text("s\th:m:s\tmax_rss\tcpu_time\n7.5\t0:00:07\t321.5\t5.25\n")
    log = logs / "w2" / "a" / "shift0.05" / "T10.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"x INFO {CPU_MARK} 1.000\nx INFO {CPU_MARK} 6.125\n")
    df = runtimes_table(bench, logs)
    assert df.to_dict("records") == [
        dict(rule="w2", job="a/shift0.05/T10", seconds=7.5, cpu_seconds=6.125, max_rss_mb=321.5)
    ]
    log.write_text("x INFO w2 done\n")
    with pytest.raises(ValueError, match=r"T10\.log: no 'cpu seconds"):
        runtimes_table(bench, logs)
    with pytest.raises(ValueError, match="no benchmark files"):
        runtimes_table(bench / "w2" / "a" / "none", logs)


def test_theorem3_block_gives_one_row_per_size(tmp_path: Path) -> None:
    row = dict(experiment="r", dataset="d", regularizer="none", T=10, family="shift", delta=0.1,
               pairs=3, w2_q=0.123456, w2_p=0.05, rhs_measured=0.3, rhs=812.4, rhs_cert=990.0,
               n_above=0, n_above_cert=1)  # fmt: skip
    pd.DataFrame([row, {**row, "family": "mass", "delta": 0.4}]).to_csv(
        tmp_path / "theorem3.csv", index=False
    )
    lines = theorem3_block(tmp_path).splitlines()
    assert lines[0].startswith("| experiment | data set | perturbation | size | pairs |")
    assert lines[2:] == [
        "| r | d | shift | 0.1 | 3 | 0.123 | 0.05 | 0.3 | 812 | 990 | 0 / 1 |",
        "| r | d | mass | 0.4 | 3 | 0.123 | 0.05 | 0.3 | 812 | 990 | 0 / 1 |",
    ]


def test_dimsweep_block_gives_one_row_per_set_and_d(tmp_path: Path) -> None:
    row = dict(experiment="dimsweep", base="gaussian", regularizer="none", T=10, d=8, runs=3,
               w2=0.51234, w2_floor=0.5, w2_over_floor=1.02, w2_gelbrich=0.02,
               w2_gelbrich_floor=0.01, jdsm=4.0, dsm_floor=3.9, log_intercept=1.5, bound=30.0,
               w2_trivial=2.0, tightness=4.07, L_s_max=1.0, L_exact_max=9.0, L_law_max=-1.0,
               n_informative=0)  # fmt: skip
    pd.DataFrame([row, {**row, "d": 16, "n_informative": 3}]).to_csv(
        tmp_path / "dimsweep.csv", index=False
    )
    lines = dimsweep_block(tmp_path).splitlines()
    assert lines[0].startswith("| data set | d | runs | W2 | W2 floor |")
    cells = "| 3 | 0.512 | 0.5 | 0.02 | 0.01 | 4 | 3.9 | 1.5 | 30 | 2 | 4.07 |"
    assert lines[2:] == [f"| gaussian | 8 {cells} 0 of 3 |", f"| gaussian | 16 {cells} 3 of 3 |"]
