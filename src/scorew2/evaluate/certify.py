"""Certified one-sided Lipschitz constants of the final models of a run group (rule certify).

The region at step i, per model: the bounding box of p_i's mixture components widened by
k sigma_i (the training points x_n, which p_i noises to N(sqrt(abar_i) x_n, sigma_i^2 I),
sigma_i = sqrt(1 - abar_i)), joined with the bounding box of the model's own sampler states
x_i (the chains of ``scorew2.evaluate.lipschitz``). Both processes of the bound's coupling
live there (p_i up to its k sigma tails); a box is convex, so the segments between their
points are in it too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from scorew2.evaluate import RunGroup
from scorew2.evaluate.lipschitz import sampler_states
from scorew2.lipschitz import certified_lipschitz

__all__ = ["certify_group", "certify_regions"]


def certify_regions(group: RunGroup, n_paths: int, k_sigma: float) -> tuple[np.ndarray, ...]:
    """The boxes (lo, hi), each (T, M, d): p_i's components +- k_sigma sigma_i joined with
    the bounding box of the finite sampler states at step i."""
    sch, M = group.schedule, group.model.n_models
    root = np.sqrt(sch.alpha_bars)[:, None]
    sigma = np.sqrt(1.0 - sch.alpha_bars)[:, None]
    lo = root * group.train.min(0) - k_sigma * sigma  # (T, d)
    hi = root * group.train.max(0) + k_sigma * sigma
    paths = sampler_states(group, n_paths).double()  # (T, M, n, d)
    ok = torch.isfinite(paths).all(-1, keepdim=True)
    p_lo = torch.where(ok, paths, torch.inf).amin(2).numpy()
    p_hi = torch.where(ok, paths, -torch.inf).amax(2).numpy()
    lo = np.minimum(np.broadcast_to(lo[:, None], (sch.T, M, lo.shape[1])), p_lo)
    hi = np.maximum(np.broadcast_to(hi[:, None], (sch.T, M, hi.shape[1])), p_hi)
    return lo, hi


def certify_group(group: RunGroup, n_paths: int, k_sigma: float, tol: float) -> pd.DataFrame:
    """Per model and step i: certified bounds L_cert_lower <= L <= L_cert_upper on
    L = sup over the region of lambda_max(sym grad s_theta(., i)) (``certified_lipschitz``,
    gap <= tol max(1, |upper|)), the region's corners and the boxes it took (its time is in
    the rule's benchmark)."""
    sch, M, d = group.schedule, group.model.n_models, group.model.dim
    lo, hi = certify_regions(group, n_paths, k_sigma)
    cols = {k: np.empty((M, sch.T)) for k in ("L_cert_lower", "L_cert_upper")}
    boxes = np.empty((M, sch.T), dtype=np.int64)
    converged = np.empty((M, sch.T), dtype=bool)
    for i in range(sch.T):
        c = certified_lipschitz(group.model, i, sch.alpha_bars, lo[i], hi[i], tol)
        cols["L_cert_lower"][:, i], cols["L_cert_upper"][:, i] = c.lower, c.upper
        boxes[:, i], converged[:, i] = c.n_boxes, c.converged
    corners = {f"{side}{a}": v[:, :, a].T for side, v in (("lo", lo), ("hi", hi)) for a in range(d)}
    return group.step_frame(**cols, converged=converged, n_boxes=boxes, **corners)
