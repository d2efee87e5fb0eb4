"""Exact W2 of the samples a run group's checkpoints produced, without the network (no torch).

The bound assembled from this table and the others is in scorew2.bound_table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scorew2.runs import GroupId, frame
from scorew2.wasserstein import w2, w2_many

__all__ = ["w2_group"]


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
