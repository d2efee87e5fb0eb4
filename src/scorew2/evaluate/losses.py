"""J_DSM, J_SM and the DSM floor of every model of a run group (the ``losses`` rule)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch

from scorew2.evaluate import RunGroup, eps_of
from scorew2.model import ScoreNet, select_state
from scorew2.score import dsm_terms, noised_points, scores_and_floor, sm_terms
from scorew2.streams import torch_generator

__all__ = ["LOSS_MODELS", "loss_group"]

#: Models per pass of the loss step: its (models, T, N, d) float64 predictions stay ~100 MB.
LOSS_MODELS = 16


def _model_chunks(model: ScoreNet, size: int) -> Iterator[ScoreNet]:
    """The models of a batched ScoreNet, ``size`` at a time, as smaller batched ScoreNets."""
    state = model.state_dict()
    cfg = model.config()
    for a in range(0, model.n_models, size):
        idx = list(range(a, min(a + size, model.n_models)))
        sub = ScoreNet.from_state(
            select_state(state, idx),
            cfg["n_steps"],
            cfg["regularizer"],
            dim=cfg["dim"],
            hidden=cfg["hidden"],
        )
        yield sub.eval()


def loss_group(group: RunGroup, draws: int) -> pd.DataFrame:
    """J_DSM and J_SM of every model on shared noised points, and the DSM floor.

    J_DSM = 1/2 sum_i b_i/(1-abar_i) E|eps_theta - eps|^2 and J_SM = 1/2 sum_i b_i
    E|s_theta - s*|^2 with the exact score s* of the noised empirical data (docs/paper.md 2).
    Every training point is noised ``draws`` times at every step (``noised_points``), so the
    expectation over the empirical p0 is exact and only the noise is Monte Carlo; the same
    points serve every model. ``gap_se`` is the Monte Carlo standard error of the estimate of
    J_DSM - J_SM (which equals ``dsm_floor`` in expectation for every theta, Theorem 2).
    """
    sch = group.schedule
    pts = noised_points(group.train, sch, draws, torch_generator(group.seed, "losses"))
    T, m, d = pts.xt.shape
    true, floor = scores_and_floor(pts.xt, group.train, sch)
    steps = torch.arange(T).repeat_interleave(m)
    jd, js, se = [], [], []
    for sub in _model_chunks(group.model, LOSS_MODELS):  # bounds memory: (models, T, m, d)
        eps_pred = eps_of(sub, pts.xt.reshape(T * m, d), steps).double()
        eps_pred = eps_pred.reshape(sub.n_models, T, m, d)
        a, c = dsm_terms(eps_pred, pts.eps, sch), sm_terms(eps_pred, true, sch)
        jd.append(a.mean(-1).sum(-1).numpy())
        js.append(c.mean(-1).sum(-1).numpy())
        # standard error of J_DSM - J_SM over the m points (each point's terms summed over steps)
        se.append(((a - c).sum(-2).std(-1) / np.sqrt(m)).numpy())
    return group.frame(
        jdsm=np.concatenate(jd),
        jsm=np.concatenate(js),
        gap_se=np.concatenate(se),
        dsm_floor=float(floor),
    )
