"""Evaluation of a run group's checkpoints with the network: samples, J_DSM / J_SM, L_s(t).

A run group (``RunGroup``) is the S seeds of one (experiment, data set, regulariser, T) at the
checkpoints it evaluates, as one batched ScoreNet of K x S models (model k * S + s), with its
training set, schedule, prior and evaluation seed. Every function here evaluates all its models
at once and returns a tidy table with one row per (seed, epoch) or per (seed, epoch, step).
Exact W2 and the bound need no network: they are in ``scorew2.metrics``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from scorew2.checkpoints import Checkpoints, load_checkpoints
from scorew2.io import load_npz
from scorew2.lipschitz import jacobian_max_eig, pairs_max_ratio, paper_grid, region_grid
from scorew2.model import ScoreNet, select_state
from scorew2.runs import GroupId, frame
from scorew2.sample import ancestral_sample, make_prior
from scorew2.schedule import Schedule, make_schedule
from scorew2.score import (
    dsm_terms,
    empirical_score_jacobian_eigs,
    noised_points,
    scores_and_floor,
    sm_terms,
)
from scorew2.streams import numpy_rng, torch_generator

__all__ = [
    "EVAL_CHUNK",
    "RunGroup",
    "job_group",
    "lipschitz_group",
    "load_group",
    "loss_group",
    "sample_group",
]

#: Points per model per forward pass when evaluating many models at once: the (models,
#: points, hidden) activations stay in cache (benchmarks/README.md).
EVAL_CHUNK = 128
#: Models per pass of the loss step: its (models, T, N, d) float64 predictions stay ~100 MB.
LOSS_MODELS = 16


@dataclass(frozen=True)
class RunGroup:
    """What every evaluation step of a run group works on.

    Attributes
    ----------
    id : GroupId
        (experiment, data set, regulariser, T): the identity columns of its tables.
    checkpoints : Checkpoints
        Its models at the evaluated checkpoints.
    train : np.ndarray of shape (N, d)
        The training set p0.
    schedule : Schedule
    prior : {"data", "gaussian"}
        The sampler's start q_T: p_T itself, or N(0, I).
    seed : int
        The evaluation seed; every random draw has its own stream of it (``scorew2.streams``).
    """

    id: GroupId
    checkpoints: Checkpoints
    train: np.ndarray
    schedule: Schedule
    prior: str
    seed: int

    @property
    def model(self) -> ScoreNet:
        return self.checkpoints.model

    def frame(self, **columns: Any) -> pd.DataFrame:
        """A table with one row per model: identity columns, seed, epoch, ``columns``."""
        return frame(self.id, self.checkpoints.seeds, self.checkpoints.epochs, **columns)


def load_group(
    group: GroupId,
    checkpoints: str | os.PathLike[str],
    data: str | os.PathLike[str],
    run: Mapping[str, Any],
    seed: int,
) -> RunGroup:
    """Read a run group: its regulariser's models at the epochs ``run["checkpoints"]`` names
    ("all" or "final"), the training set, the schedule ``run["schedule"]`` and the prior."""
    ck = load_checkpoints(checkpoints, run["checkpoints"], group.regularizer)
    train = load_npz(data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    return RunGroup(group, ck, train, schedule, run["prior"], int(seed))


def job_group(smk: Any) -> RunGroup:
    """The run group of a Snakemake evaluation job: its wildcards name the group, its inputs
    ``checkpoints`` and ``data`` and its params ``run`` and ``seed`` say what to read."""
    gid = GroupId.from_wildcards(smk.wildcards)
    return load_group(gid, smk.input.checkpoints, smk.input.data, smk.params.run, smk.params.seed)


def _eps(
    model: ScoreNet, x: torch.Tensor, step: torch.Tensor, chunk: int = EVAL_CHUNK
) -> torch.Tensor:
    """eps_theta of every model at the shared points x (B, d) and steps (B,): (M, B, d)."""
    M = model.n_models
    out = []
    with torch.no_grad():
        for a in range(0, x.shape[0], chunk):
            xb = x[a : a + chunk].float().expand(M, -1, -1)
            tb = step[a : a + chunk].expand(M, -1)
            out.append(model(xb, tb))
    return torch.cat(out, dim=1)


def _subset(train: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct training points drawn by ``rng``, in data order."""
    return train[np.sort(rng.choice(len(train), size=min(n, len(train)), replace=False))]


def sample_group(group: RunGroup, n_points: int) -> dict[str, np.ndarray]:
    """Samples q0 of every model, from q_T = p_T or from N(0, I).

    ``ref`` is a seeded subset of ``n_points`` training points (the p0 that W2 compares with),
    ``pT`` is ``ref`` noised to step T (one draw) and the sampler starts from p_T itself
    (prior "data") or from one N(0, I) draw ``xT`` (prior "gaussian"). Every model gets the
    same starting points and the same sampler noise (common random numbers), so differences
    between checkpoints are not evaluation noise.

    Raises
    ------
    FloatingPointError
        A model produced non-finite samples (its seed and epoch are named).
    """
    ck = group.checkpoints
    ref = _subset(group.train, n_points, numpy_rng(group.seed, "reference"))
    gen = torch_generator(group.seed, "sampling")
    M = ck.model.n_models
    pT = make_prior("data", group.schedule, gen, n_models=M, data=ref)
    if group.prior == "data":  # q_T = p_T: the sampler starts from those very points
        xT = pT
    else:
        xT = make_prior("gaussian", group.schedule, gen, n_models=M, data=ref)
    out = ancestral_sample(ck.model, group.schedule, xT, gen, chunk_size=EVAL_CHUNK)
    bad = out.n_nonfinite > 0
    if bad.any():
        m = int(torch.nonzero(bad)[0])
        raise FloatingPointError(
            f"{int(bad.sum())} model(s) produced non-finite samples, first: seed "
            f"{ck.seeds[m]} at epoch {ck.epochs[m]}; W2 would be meaningless"
        )
    res = {"samples": out.x.numpy(), "seeds": ck.seeds, "epochs": ck.epochs, "ref": ref}
    if group.prior == "gaussian":
        res["pT"], res["xT"] = pT[0].numpy(), xT[0].numpy()
    return res


def _model_chunks(model: ScoreNet, size: int) -> Iterator[ScoreNet]:
    """The models of a batched ScoreNet, ``size`` at a time, as smaller batched ScoreNets."""
    state = model.state_dict()
    cfg = model.config()
    for a in range(0, model.n_models, size):
        idx = list(range(a, min(a + size, model.n_models)))
        sub = ScoreNet.from_state(
            select_state(state, idx), cfg["n_steps"], cfg["regularizer"], hidden=cfg["hidden"]
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
        eps_pred = _eps(sub, pts.xt.reshape(T * m, d), steps).double()
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


def _sampler_states(group: RunGroup, n_paths: int) -> torch.Tensor:
    """The states x_i (T, M, n_paths, d) of every model's own sampler, from the prior."""
    start = _subset(group.train, n_paths, numpy_rng(group.seed, "path_starts"))
    gen = torch_generator(group.seed, "paths")
    xT = make_prior(group.prior, group.schedule, gen, n_models=group.model.n_models, data=start)
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

    L_grid = jacobian_max_eig(field, region, n_fields=M, chunk_size=EVAL_CHUNK).numpy()
    # chains that left float range carry no information: stand them on a region point
    on_path = on_path.double()
    on_path[~torch.isfinite(on_path).all(-1)] = region[0]
    L_path = jacobian_max_eig(field, on_path, chunk_size=EVAL_CHUNK).numpy()
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
    paths = _sampler_states(group, n_paths)
    L_grid, L_path, L_paper = (np.empty((M, sch.T)) for _ in range(3))
    L_exact = np.empty(sch.T)
    for i in range(sch.T):
        region = region_grid(pts.xt[i], grid)
        L_grid[:, i], L_path[:, i], L_paper[:, i], L_exact[i] = _step_estimates(
            group, i, region, paths[i]
        )
    ck = group.checkpoints
    return frame(
        group.id,
        np.repeat(ck.seeds, sch.T),
        np.repeat(ck.epochs, sch.T),
        step=np.tile(np.arange(sch.T), M),
        L_s=np.maximum(L_grid, L_path).reshape(-1),
        L_grid=L_grid.reshape(-1),
        L_path=L_path.reshape(-1),
        L_paper=L_paper.reshape(-1),
        L_exact=np.tile(L_exact, M),
    )
