"""Seeded random streams: every random draw of the pipeline has its own named stream.

A stream is a child of ``np.random.SeedSequence(seed)`` selected by a fixed spawn key per
purpose, so two purposes never share random numbers, and the same (seed, purpose) gives the
same numbers on every machine. Training's stream ("training": the data order, time steps and
noise of one model) is the child of the model's seed; the evaluation streams are children of
the config's ``evaluation.seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PURPOSES", "numpy_rng", "stream_seed", "torch_generator"]

#: purpose -> spawn key of its SeedSequence child.
PURPOSES: dict[str, tuple[int, ...]] = {
    "training": (1,),
    "reference": (2,),
    "sampling": (3,),
    "losses": (4,),
    "lipschitz_region": (5,),
    "path_starts": (6,),
    "paths": (7,),
}


def stream_seed(seed: int, purpose: str) -> int:
    """A 64-bit seed for the stream ``purpose`` of ``seed``."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose: unknown stream {purpose!r}; known: {', '.join(PURPOSES)}")
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=PURPOSES[purpose])
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    """A numpy Generator on the stream ``purpose`` of ``seed``."""
    stream_seed(seed, purpose)  # validates the purpose
    return np.random.default_rng(int(seed))


def torch_generator(seed: int, purpose: str) -> Any:
    """A CPU torch.Generator on the stream ``purpose`` of ``seed``."""
    import torch

    stream_seed(seed, purpose)
    return torch.Generator().manual_seed(int(seed))
