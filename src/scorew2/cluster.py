"""What to raise when a cluster job was killed at a limit: read off a failed run's log.

A SLURM job that outgrows its time or memory is killed by SLURM, not by the step, so the step
cannot say why. The executor plugin reports the job's SLURM state (``SLURM status is:
'TIMEOUT'``) and the job's own log; SLURM writes its reason into that log (``... CANCELLED AT
... DUE TO TIME LIMIT ***``; ``... exceeded memory limit ...`` where memory is polled,
``Detected 1 oom-kill event(s) ...`` under cgroups). After a failed run the
Snakefile's ``onerror`` hands the run's log here, and each job killed at a limit gets one line
naming the limit, the rules it ran and the profile key to raise::

    train (SLURM job 17) was killed at its time limit: raise `runtime` (minutes) of train
    under set-resources in profiles/slurm/profile.yaml, or pass --set-resources train:runtime=...

A group job's limits are its steps' (summed over steps run one after another, or side by
side), so the hint names every rule of the group.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LIMITS", "Limit", "LimitKill", "explain_failure", "find_limit_kills", "limit_hint"]

PROFILE = "profiles/slurm/profile.yaml"


@dataclass(frozen=True)
class Limit:
    """One SLURM limit: its job state, the reasons SLURM writes, the resource that sets it."""

    name: str
    state: str
    reasons: tuple[str, ...]
    resource: str
    unit: str


LIMITS = (
    Limit("time", "TIMEOUT", ("due to time limit",), "runtime", "minutes"),
    Limit(
        "memory",
        "OUT_OF_MEMORY",
        ("exceeded memory limit", "exceeded job memory limit", "oom-kill event"),
        "mem_mb",
        "MB",
    ),
)


@dataclass(frozen=True)
class LimitKill:
    """A job that SLURM killed at ``limit``: the rule (or group) and the rules it ran."""

    unit: str
    rules: tuple[str, ...]
    slurm_job: str
    limit: Limit
    group: bool = False


_START = re.compile(r"^Error in (rule|group) ([\w.-]+)")
_SLURM_JOB = re.compile(r"SLURM-job '(\d+)'")
_STATE = re.compile(r"SLURM status is: '([A-Z_]+)'")
_RULE = re.compile(r"^\s+rule ([\w.-]+):")
_LOG = re.compile(r"^\s+log: (.*?)(?: \(check log file\(s\) for error details\))?$")


def _blocks(lines: list[str]) -> Iterable[list[str]]:
    """The error blocks of a Snakemake log: an ``Error in rule|group`` line and the indented
    lines after it."""
    block: list[str] = []
    for line in lines:
        if _START.match(line):
            if block:
                yield block
            block = [line]
        elif block and (line.startswith((" ", "\t")) or not line.strip()):
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _read(path: str) -> str:
    """A job log's text, or "" if it is gone (a SLURM log may be cleaned up)."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _which_limit(state: str | None, logs_text: str) -> Limit | None:
    """The limit named by the SLURM state, else by a reason SLURM wrote into the job's log."""
    for limit in LIMITS:
        if state == limit.state:
            return limit
    low = logs_text.lower()
    for limit in LIMITS:
        if any(reason in low for reason in limit.reasons):
            return limit
    return None


def find_limit_kills(log_text: str, read: Callable[[str], str] = _read) -> list[LimitKill]:
    """Every job of the run's log that was killed at a limit, in log order, each once."""
    kills: dict[tuple[str, str], LimitKill] = {}
    for block in _blocks(log_text.splitlines()):
        kind, unit = _START.match(block[0]).groups()  # type: ignore[union-attr]
        text = "\n".join(block)
        job = _SLURM_JOB.search(text)
        if job is None:
            continue  # not a cluster job
        state = _STATE.search(text)
        logs = [p.strip() for m in map(_LOG.match, block) if m for p in m.group(1).split(",")]
        limit = _which_limit(state and state.group(1), "\n".join(read(p) for p in logs))
        if limit is None:
            continue
        group = kind == "group"
        rules = tuple(m.group(1) for m in map(_RULE.match, block) if m) if group else (unit,)
        kills.setdefault((unit, job.group(1)), LimitKill(unit, rules, job.group(1), limit, group))
    return list(kills.values())


def limit_hint(kill: LimitKill, profile: str = PROFILE) -> str:
    """One line: what was killed, at which limit, and which profile key raises it."""
    lim = kill.limit
    what = f"group {kill.unit} ({', '.join(kill.rules)})" if kill.group else kill.unit
    keys = " and ".join(f"{r}:{lim.resource}=..." for r in kill.rules)
    return (
        f"{what} (SLURM job {kill.slurm_job}) was killed at its {lim.name} limit: raise "
        f"`{lim.resource}` ({lim.unit}) of {', '.join(kill.rules)} under set-resources in "
        f"{profile}, or pass --set-resources {keys}"
    )


def explain_failure(logfiles: str | Iterable[str], out=sys.stderr) -> int:
    """Print a hint for every job of the failed run killed at a limit; return their count."""
    paths = [logfiles] if isinstance(logfiles, str) else list(logfiles)
    kills = [k for p in paths for k in find_limit_kills(_read(p))]
    for kill in kills:
        print(f"scorew2: {limit_hint(kill)}", file=out)
    return len(kills)
