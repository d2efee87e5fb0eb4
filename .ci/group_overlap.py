"""CI check (.ci/slurm_faults.sh, d): a group job runs its steps side by side.

For every run group of a SLURM run, the evaluation steps that depend only on the samples (w2,
losses, lipschitz) may run at once inside the group's SLURM job (profiles/slurm: cores 2, one
CPU per step). A step's interval is [end - s, end]: ``end`` its benchmark file's modification
time (written as the step ends), ``s`` the wall seconds the benchmark measured. Each run group
passes if two of its steps ran in the same SLURM job (the job id each step's log records) and
their intervals overlap. Usage: python .ci/group_overlap.py <results_dir>
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pandas as pd

STEPS = ("w2", "losses", "lipschitz")
JOB = re.compile(r"SLURM job (\d+)")


def interval(results: Path, step: str, group: Path) -> tuple[float, float, str] | None:
    """(start, end, SLURM job id) of one step of one run group; None if it did not run."""
    bench = results / "benchmarks" / step / group.with_suffix(".tsv")
    log = results / "logs" / step / group.with_suffix(".log")
    if not bench.is_file() or not log.is_file():
        return None
    seconds = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
    end = bench.stat().st_mtime
    job = JOB.search(log.read_text())
    return end - seconds, end, job.group(1) if job else "none"


def main(results: Path) -> int:
    groups = sorted(
        p.relative_to(results / "benchmarks" / "w2").with_suffix("")
        for p in (results / "benchmarks" / "w2").rglob("*.tsv")
    )
    failed = 0
    for group in groups:
        spans = {s: iv for s in STEPS if (iv := interval(results, s, group)) is not None}
        best = max(
            (
                (min(a[1], b[1]) - max(a[0], b[0]), sa, sb)
                for (sa, a), (sb, b) in itertools.combinations(spans.items(), 2)
                if a[2] == b[2] != "none"
            ),
            default=None,
        )
        ok = best is not None and best[0] > 0
        failed += not ok
        detail = (
            f"{best[1]} and {best[2]} overlap {best[0]:.1f} s in SLURM job {spans[best[1]][2]}"
            if best
            else "no two steps in one SLURM job"
        )
        print(f"{'ok' if ok else 'FAIL'}: {group}: {detail}")
    print(f"{len(groups) - failed} of {len(groups)} run groups ran steps side by side")
    return 1 if failed or not groups else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
