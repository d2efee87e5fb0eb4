"""scorew2.jobs: a pipeline step's log, and the CPU time it ends with."""

from __future__ import annotations

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
