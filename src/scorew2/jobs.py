"""Running one pipeline step: its log file, its thread count, and a clear failure.

A Snakemake ``script:`` calls ``with job(snakemake) as log:``; everything the step logs goes to
the rule's ``log:`` file, torch uses the rule's ``threads``, and an exception is written to
the log with its message before it propagates (Snakemake then removes the step's outputs).
Denormal floats (below 1.2e-38) are flushed to zero, as scorew2.train does while training:
softplus of the maximise-phase networks' large activations makes them, and they are 3x
slower to compute with; no number the pipeline reports is that small.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import traceback
from collections.abc import Iterator
from typing import Any

__all__ = ["job"]


@contextlib.contextmanager
def job(smk: Any) -> Iterator[logging.Logger]:
    """Set up logging to ``smk.log[0]`` and ``torch.set_num_threads(smk.threads)``."""
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

    import torch

    torch.set_num_threads(max(1, int(getattr(smk, "threads", 1))))
    torch.set_flush_denormal(True)
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
        handler.close()
