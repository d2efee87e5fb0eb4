"""One-sided Lipschitz estimates L_s(t) of every model of a run group (the ``lipschitz`` rule)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from scorew2.evaluate import EVAL_CHUNK, RunGroup, subset
from scorew2.lipschitz import jacobian_sym_eigs, pairs_max_ratio, paper_grid, region_grid
from scorew2.sample import ancestral_sample, make_prior
from scorew2.score import empirical_score_jacobian_eigs, noised_points
from scorew2.streams import numpy_rng, torch_generator

__all__ = ["lipschitz_group", "sampler_states"]


def sampler_states(group: RunGroup, n_paths: int) -> torch.Tensor:
    """The states x_i (T, M, n_paths, d) of every model's own sampler, from the prior."""
    start = subset(group.train, n_paths, numpy_rng(group.seed, "path_starts"))
    gen = torch_generator(group.seed, "path_prior")
    xT = make_prior(group.prior, group.schedule, gen, n_models=group.model.n_models, data=start)
    gen = torch_generator(group.seed, "path_sampler")
    return ancestral_sample(
        group.model, group.schedule, xT, gen, chunk_size=EVAL_CHUNK, keep_path=True
    ).path


def _step_estimates(
    group: RunGroup, i: int, region: torch.Tensor, on_path: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L_grid, L_path, L_paper (each (M,)) and L_exact at step i (see ``lipschitz_group``)."""
    model, M, sch = group.model, group.model.n_models, group.schedule

    def field(x: torch.Tensor) -> torch.Tensor:
        t = torch.full(x.shape[:2], i, dtype=torch.long)
        return sch.eps_to_score(model(x.float(), t).double(), i)

    L_grid = jacobian_sym_eigs(field, region, n_fields=M, chunk_size=EVAL_CHUNK).amax(1).numpy()
    # chains that left float range carry no information: stand them on a region point
    on_path = on_path.double()
    on_path[~torch.isfinite(on_path).all(-1)] = region[0]
    L_path = jacobian_sym_eigs(field, on_path, chunk_size=EVAL_CHUNK).amax(1).numpy()
    pg = paper_grid()
    with torch.no_grad():
        vals = field(pg.expand(M, -1, -1))
    L_paper = np.array([pairs_max_ratio(v, pg) for v in vals])
    eigs = empirical_score_jacobian_eigs(region, group.train, float(sch.alpha_bars[i]))
    return L_grid, L_path, L_paper, float(eigs.max())


def lipschitz_group(group: RunGroup, grid: int, n_paths: int) -> pd.DataFrame:
    """One-sided Lipschitz estimates L_s(i) of every model's score at every step i.

    Each is a max of lambda_max of the symmetric part of the Jacobian of s_theta(., i) =
    -eps_theta(., i) / sqrt(1 - abar_i) over a point set:

    - L_grid: a ``grid`` x ``grid`` lattice covering the bounding box of the training points
      noised to step i (one draw): where p_i lives;
    - L_path: the states x_i of the model's own sampler (``n_paths`` chains from the prior):
      where q_i lives, which for a bad model is far from the data;
    - L_s = max(L_grid, L_path): the estimate the bound uses;
    - L_paper: the authors' estimator, max over pairs of the 10 x 10 grid on [0, 0.9]^2;
    - L_exact: L_grid's estimator applied to the exact score of the noised training set.

    All are LOWER estimates of the sup over the plane (docs/paper.md 3): not certified.
    """
    sch, M = group.schedule, group.model.n_models
    pts = noised_points(group.train, sch, 1, torch_generator(group.seed, "lipschitz_region"))
    paths = sampler_states(group, n_paths)
    L_grid, L_path, L_paper = (np.empty((M, sch.T)) for _ in range(3))
    L_exact = np.empty(sch.T)
    for i in range(sch.T):
        region = region_grid(pts.xt[i], grid)
        L_grid[:, i], L_path[:, i], L_paper[:, i], L_exact[i] = _step_estimates(
            group, i, region, paths[i]
        )
    return group.step_frame(
        L_s=np.maximum(L_grid, L_path),
        L_grid=L_grid,
        L_path=L_path,
        L_paper=L_paper,
        L_exact=L_exact,
    )
