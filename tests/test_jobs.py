"""scorew2.jobs: a pipeline step's log, and the CPU time it ends with."""

from __future__ import annotations

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
