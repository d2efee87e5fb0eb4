"""scorew2.jobs: a pipeline step's log, and the CPU time it ends with."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from scorew2.jobs import CPU_MARK, cpu_seconds, job, logged_cpu_seconds


def test_job_logs_its_cpu_seconds_last_even_when_it_fails(tmp_path: Path) -> None:
    """``job`` ends its log with the process's CPU seconds (getrusage: at least the CPU this
    test burns inside it), also when the step raises."""
    smk = SimpleNamespace(log=[str(tmp_path / "step.log")], rule="r", wildcards={}, threads=1)
    before = cpu_seconds()
    with job(smk):
        sum(i * i for i in range(2_000_000))
    assert logged_cpu_seconds(smk.log[0]) >= before + 0.05
    lines = (tmp_path / "step.log").read_text().splitlines()
    assert CPU_MARK in lines[-1]
    with pytest.raises(RuntimeError, match="boom"), job(smk):
        raise RuntimeError("boom")
    assert CPU_MARK in (tmp_path / "step.log").read_text().splitlines()[-1]


def test_a_step_without_torch_does_not_import_it_and_one_with_torch_gets_its_threads(
    tmp_path: Path,
) -> None:
    """In a fresh interpreter: ``job`` leaves torch unimported when the script has not imported
    it (numpy-only steps start about 1.3 CPU-s faster) and sets OMP_NUM_THREADS for a later
    import; with torch imported first, torch gets the step's threads and flushes denormals."""
    code = (
        "import os, sys\n"
        "from types import SimpleNamespace\n"
        "PRE"
        "from scorew2.jobs import job\n"
        f"smk = SimpleNamespace(log=[{str(tmp_path / 's.log')!r}], rule='r', wildcards={{}},"
        " threads=3)\n"
        "with job(smk):\n"
        "    loaded = 'torch' in sys.modules\n"
        "    print(loaded, os.environ['OMP_NUM_THREADS'], end=' ')\n"
        "    if loaded:\n"
        "        import torch\n"
        "        t = torch.tensor([1e-39], dtype=torch.float32)\n"
        "        print(torch.get_num_threads(), (t * 1.0).item() == 0.0, end='')\n"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code.replace("PRE", pre)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for pre in ("", "import torch\n")
    ]
    assert outs == ["False 3 ", "True 3 3 True"]


STEP = """
import sys
from snakemake.iocontainers import (
    InputFiles, Log, OutputFiles, Params, ResourceList, Snakemake, Wildcards
)
from scorew2.jobs import job

smk = Snakemake(
    InputFiles(), OutputFiles(), Params(), Wildcards(), 1, ResourceList(), Log([LOG]), {}, "r",
    None,
)
with job(smk) as log:
    print("inside")  # not flushed here: stdout is a pipe, so block-buffered
    log.info("done")
    if FAIL:
        raise RuntimeError("boom")
print("after the block")
"""


@pytest.mark.parametrize("fail", [False, True])
def test_a_snakemake_step_ends_with_its_block(tmp_path: Path, fail: bool) -> None:
    """With a real Snakemake ``snakemake`` object, a step that succeeds exits 0 at the end of
    its ``job`` block (nothing after it runs) with its output flushed and its log complete; a
    step that fails propagates its error as before (exit 1, traceback)."""
    log = tmp_path / "step.log"
    code = STEP.replace("LOG", repr(str(log))).replace("FAIL", str(fail))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.stdout.startswith("inside")
    assert "after the block" not in proc.stdout
    assert CPU_MARK in log.read_text().splitlines()[-1]
    if fail:
        assert proc.returncode == 1 and "RuntimeError: boom" in proc.stderr
    else:
        assert proc.returncode == 0 and "done" in log.read_text()


def test_every_workflow_script_ends_with_its_job_block() -> None:
    """A step exits at the end of its ``with job(snakemake)`` block, so nothing may follow it."""
    scripts = sorted((Path(__file__).resolve().parents[1] / "workflow" / "scripts").glob("*.py"))
    assert len(scripts) >= 16
    for path in scripts:
        last = ast.parse(path.read_text()).body[-1]
        assert isinstance(last, ast.With), f"{path.name}: code after its job block never runs"
        call = last.items[0].context_expr
        assert isinstance(call, ast.Call) and getattr(call.func, "id", "") == "job", path.name
