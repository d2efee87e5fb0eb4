"""L_s(t) without a grid, in any dimension (the ``lipschitz_cloud`` rule of the dimension sweep).

A grid of the region where p_t lives has g^d points, beyond reach past d = 3; here the
Jacobian is taken at a cloud of points that scales with the data instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from scorew2.evaluate import EVAL_CHUNK, RunGroup
from scorew2.evaluate.lipschitz import sampler_states
from scorew2.highdim import law_lipschitz, parse_dim
from scorew2.lipschitz import jacobian_sym_eigs, pairs_max_ratio, paper_grid
from scorew2.score import empirical_score_jacobian_eigs, noised_points
from scorew2.streams import torch_generator

__all__ = ["cloud_lipschitz_group", "embedded_paper_grid"]


def embedded_paper_grid(dim: int) -> torch.Tensor:
    """The authors' 10 x 10 grid on [0, 0.9]^2 in the plane of the first two coordinates."""
    pg = paper_grid()
    return torch.cat([pg, torch.zeros(len(pg), dim - 2, dtype=pg.dtype)], dim=1)


def _clouds(
    group: RunGroup, n_points: int, n_paths: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three clouds of every step: noised data (T, n, d), every model's sampler states
    (T, M, n_paths, d), and points between them (T, M, k, d), k = min(n, n_paths)."""
    gen = torch_generator(group.seed, "lipschitz_region")
    N = len(group.train)
    idx = torch.randperm(N, generator=gen)[: min(n_points, N)].sort().values
    data = noised_points(group.train[idx.numpy()], group.schedule, 1, gen).xt
    paths = sampler_states(group, n_paths).double()
    # chains that left float range carry no information: stand them on a data point
    bad = ~torch.isfinite(paths).all(-1)
    paths[bad] = data[:, None, :1].expand_as(paths)[bad]
    k = min(data.shape[1], paths.shape[2])
    u = torch.rand((*paths.shape[:2], k, 1), generator=gen, dtype=torch.float64)
    between = data[:, None, :k] + u * (paths[:, :, :k] - data[:, None, :k])
    return data, paths, between


def _top(field: Callable[[torch.Tensor], torch.Tensor], pts: torch.Tensor, M: int | None = None):
    """Per field, the max over ``pts`` of lambda_max of the Jacobian's symmetric part: (M,)."""
    return jacobian_sym_eigs(field, pts, n_fields=M, chunk_size=EVAL_CHUNK).amax(1).numpy()


def cloud_lipschitz_group(
    group: RunGroup, n_points: int, n_paths: int, law: Mapping[str, float]
) -> pd.DataFrame:
    """One-sided Lipschitz estimates L_s(i) of every model's score at every step i, any d.

    Each is a max of lambda_max of the symmetric part of the Jacobian of s_theta(., i) =
    -eps_theta(., i) / sqrt(1 - abar_i) over a cloud of points:

    - L_data: ``n_points`` training points noised to step i (one draw): where p_i lives;
    - L_path: the states x_i of the model's own sampler (``n_paths`` chains): where q_i lives;
    - L_between: one uniform random point on the segment between the j-th noised point and
      the j-th sampler state, for each j: the space a coupling of p_i and q_i crosses;
    - L_s = max(L_data, L_path, L_between): the estimate the bound uses;
    - L_paper: the authors' estimator (pairs of the 10 x 10 grid on [0, 0.9]^2) with the grid
      in the plane of the first two coordinates;
    - L_exact: L_data's estimator on the exact score of the noised training set;
    - L_law: the law's own L_s(i) where a closed form exists (Gaussian: -1 / (abar_i v + 1
      - abar_i), v from ``law``, the data set's parameters), else NaN.

    All but L_law are LOWER estimates of the sup over the region the clouds sample (their
    points, and no more): not certified.
    """
    sch, M = group.schedule, group.model.n_models
    data, paths, between = _clouds(group, n_points, n_paths)
    pg = embedded_paper_grid(group.train.shape[1])
    est = {k: np.empty((M, sch.T)) for k in ("L_data", "L_path", "L_between", "L_paper")}
    L_exact = np.empty(sch.T)
    for i in range(sch.T):

        def field(x: torch.Tensor, i: int = i) -> torch.Tensor:
            t = torch.full(x.shape[:2], i, dtype=torch.long)
            return sch.eps_to_score(group.model(x.float(), t).double(), i)

        est["L_data"][:, i] = _top(field, data[i], M)
        est["L_path"][:, i] = _top(field, paths[i])
        est["L_between"][:, i] = _top(field, between[i])
        with torch.no_grad():
            vals = field(pg.expand(M, -1, -1))
        est["L_paper"][:, i] = [pairs_max_ratio(v, pg) for v in vals]
        abar = float(sch.alpha_bars[i])
        L_exact[i] = float(empirical_score_jacobian_eigs(data[i], group.train, abar).max())
    base = parse_dim(group.id.dataset)
    if base is None:
        raise ValueError(f"{group.id.dataset}: not a data set of the dimension sweep")
    L_law = law_lipschitz(base[0], sch.alpha_bars, **law)
    L_s = np.maximum(np.maximum(est["L_data"], est["L_path"]), est["L_between"])
    return group.step_frame(L_s=L_s, **est, L_exact=L_exact, L_law=L_law)
