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

#: purpose -> spawn key of its SeedSequence child:
#: training   one model's data order, time steps and noise (child of the model's seed)
#: reference  the subset of training points that W2 compares with
#: p_T        the noise that takes that subset to step T (p_T; q_T itself for prior "data")
#: prior      the N(0, I) draw that starts the sampler for prior "gaussian"
#: sampler    the sampler's noise z at every step
#: losses     the noise of the points at which J_DSM and J_SM are estimated
#: lipschitz_region  the noised data whose bounding box holds the L_s grid
#: path_starts, path_prior, path_sampler  the starting points, the prior draw and the noise
#:            of the sampler paths whose states join the L_s region
#: claims_bootstrap  the seed resamples of the claims' bootstrap intervals of medians
PURPOSES: dict[str, tuple[int, ...]] = {
    "training": (1,),
    "reference": (2,),
    "p_T": (3,),
    "prior": (4,),
    "sampler": (5,),
    "losses": (6,),
    "lipschitz_region": (7,),
    "path_starts": (8,),
    "path_prior": (9,),
    "path_sampler": (10,),
    "claims_bootstrap": (11,),
}


def stream_seed(seed: int, purpose: str) -> int:
    """A 64-bit seed for the stream ``purpose`` of ``seed``."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose: unknown stream {purpose!r}; known: {', '.join(PURPOSES)}")
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=PURPOSES[purpose])
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    """A numpy Generator on the stream ``purpose`` of ``seed``."""
    return np.random.default_rng(stream_seed(seed, purpose))


def torch_generator(seed: int, purpose: str) -> Any:
    """A CPU torch.Generator on the stream ``purpose`` of ``seed``."""
    import torch

    return torch.Generator().manual_seed(stream_seed(seed, purpose))
