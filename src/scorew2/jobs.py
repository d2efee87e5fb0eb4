"""Running one pipeline step: its log file, its thread count, and a clear failure.

A Snakemake ``script:`` calls ``with job(snakemake) as log:``; everything the step logs goes to
the rule's ``log:`` file, torch uses the rule's ``threads``, and an exception is written to
the log with its message before it propagates (Snakemake then removes the step's outputs).
Denormal floats (below 1.2e-38) are flushed to zero, as scorew2.train does while training:
softplus of the maximise-phase networks' large activations makes them, and they are 3x
slower to compute with; no number the pipeline reports is that small.

The step's last log line is its CPU time (``CPU_MARK``, user + system of its process and its
children, from getrusage at its end), which ``scorew2.tables.runtimes_table`` reads: Snakemake's
``benchmark:`` cpu_time is sampled every 0.5 s for the first 15 s and every 30 s after, so it
misses up to 30 s of a long job.

A step run by Snakemake ends as soon as its block does: once its outputs are written (each
atomically, ``scorew2.io``) and its log is closed, the process exits with status 0 through
``os._exit`` and skips the interpreter's teardown (finalising torch, pandas and every module:
0.5-0.8 CPU-s a process here, a sixth of a short step). So the ``with job(...)`` block must be
a script's last statement (tested). A failing step, and ``job`` called outside a Snakemake
script (tests), return normally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import socket
import sys
import traceback
from collections.abc import Iterator
from typing import Any

__all__ = ["CPU_MARK", "cpu_seconds", "job", "logged_cpu_seconds"]

CPU_MARK = "cpu seconds (user + system, this process and its children):"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (getrusage)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def logged_cpu_seconds(log_path: str | os.PathLike) -> float:
    """The CPU seconds that ``job`` wrote as the last ``CPU_MARK`` line of a step's log.

    Raises FileNotFoundError for a missing log and ValueError, naming it, for a log without
    that line (a step that was killed, or a log written before the line existed).
    """
    with open(log_path, encoding="utf-8") as fh:
        found = re.findall(re.escape(CPU_MARK) + r" ([0-9.]+)", fh.read())
    if not found:
        raise ValueError(f"{log_path}: no '{CPU_MARK}' line (was the step killed?)")
    return float(found[-1])


def _configure_torch(threads: int) -> None:
    """The step's thread count for torch, and denormals flushed, without importing torch.

    A step whose script imports no torch-using module (W2, bounds, data, tables, figures)
    pays no torch import (about 1.3 CPU-s of the 2-core budget per step). Every script imports
    what it uses at its top, so torch, when a step needs it, is loaded by now; the
    ``OMP_NUM_THREADS`` set here gives a later import, and the step's children, the same count.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)


@contextlib.contextmanager
def job(smk: Any) -> Iterator[logging.Logger]:
    """Set up logging to ``smk.log[0]``, and torch's threads (``smk.threads``) where loaded."""
    log_path = smk.log[0]
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    logger = logging.getLogger(f"scorew2.{smk.rule}")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers[:] = [handler, logging.StreamHandler(sys.stderr)]
    logger.propagate = False
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]

    _configure_torch(max(1, int(getattr(smk, "threads", 1))))
    logger.info(
        "rule %s, wildcards %s, host %s, SLURM job %s",
        smk.rule,
        dict(smk.wildcards.items()),
        socket.gethostname(),
        os.environ.get("SLURM_JOB_ID", "none"),
    )
    try:
        yield logger
    except Exception as err:
        logger.error("%s failed: %s: %s", smk.rule, type(err).__name__, err)
        logger.debug("%s", traceback.format_exc())
        handler.stream.write(traceback.format_exc())
        raise
    finally:
        logger.info("%s %.3f", CPU_MARK, cpu_seconds())
        handler.close()
    if _run_by_snakemake(smk):
        _exit_now()


def _run_by_snakemake(smk: Any) -> bool:
    """Whether ``smk`` is the ``snakemake`` object of a Snakemake ``script:`` process (whose
    preamble has loaded its class; nothing is imported here)."""
    containers = sys.modules.get("snakemake.iocontainers")
    return containers is not None and isinstance(smk, containers.Snakemake)


def _exit_now() -> None:
    """Flush every stream and logging handler, then end the process with status 0 at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
