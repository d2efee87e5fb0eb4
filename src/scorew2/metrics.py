"""W2 of the samples a run group's checkpoints produced, without the network (no torch):
exact (``w2_group``) and bracketed by moments (``moments_group``, the dimension sweep).

The bound assembled from this table and the others is in scorew2.bound_table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scorew2.moments import gaussian_w2, sample_moments, trivial_upper
from scorew2.runs import GroupId, frame
from scorew2.wasserstein import w2, w2_many

__all__ = ["moments_group", "w2_group"]


def w2_group(group: GroupId, samples: Mapping[str, np.ndarray], fresh: np.ndarray) -> pd.DataFrame:
    """Exact W2(p0, q0) per model, the sampling noise floor, and W2(p_T, q_T) for a prior.

    w2_floor = W2(ref, an independent draw of the same law, as many points): what a model
    that learned the law (not the training set) would score. For prior N(0, I): w2_T =
    W2(p_T, q_T) per model and w2_p0_prior = W2(p0, q_T) (Corollary 2's factor).
    """
    ref, q0 = samples["ref"], samples["samples"]
    n = len(ref)
    floor = w2(ref, fresh[:n])
    # consecutive checkpoints of a seed are similar problems: solve them in that order so each
    # warm-starts from the previous plan (every value is still certified optimal)
    order = np.lexsort((samples["epochs"], samples["seeds"]))
    w2_q0 = w2_many(ref, q0, order=order)
    if "xT" in samples:  # the same prior draw for every model
        w2_T = np.full(len(q0), w2(samples["pT"], samples["xT"]))
        w2_prior = np.full(len(q0), w2(ref, samples["xT"]))
    else:  # q_T = p_T
        w2_T = np.zeros(len(q0))
        w2_prior = np.full(len(q0), np.nan)
    return frame(
        group,
        samples["seeds"],
        samples["epochs"],
        w2=w2_q0,
        w2_floor=floor,
        w2_T=w2_T,
        w2_p0_prior=w2_prior,
    )


def moments_group(
    group: GroupId,
    samples: Mapping[str, np.ndarray],
    fresh: np.ndarray,
    law: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """W2 between the law p0 (``law`` = its mean and covariance) and each model's q0 by moments.

    w2_gelbrich: Gelbrich's lower bound W2(N(m, S), N(mean, cov of q0's samples)) (a proxy
    of W2(p0, q0) that does not suffer the n^(-1/d) floor; exact for Gaussian laws);
    w2_gelbrich_floor: the same for an independent draw of p0 (``fresh``, as many points as
    the samples): what sampling alone gives; w2_trivial: sqrt(tr S) + sqrt(E|Y - m|^2) over
    q0's samples, the triangle bound any bound of W2(p0, q0) must beat (``scorew2.moments``).
    """
    mean, cov = law
    q0 = samples["samples"]
    n = q0.shape[1]
    floor = gaussian_w2(mean, cov, *sample_moments(fresh[:n]))
    # a model whose samples left float range is infinitely far from p0 by either measure
    ok = np.isfinite(q0).all(axis=(1, 2))
    gel, triv = np.full(len(q0), np.inf), np.full(len(q0), np.inf)
    for m in np.flatnonzero(ok):  # one eigendecomposition per model
        gel[m] = gaussian_w2(mean, cov, *sample_moments(q0[m]))
        triv[m] = trivial_upper(mean, cov, q0[m])
    return frame(
        group,
        samples["seeds"],
        samples["epochs"],
        w2_gelbrich=gel,
        w2_gelbrich_floor=floor,
        w2_trivial=triv,
    )
