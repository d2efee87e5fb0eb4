"""Evaluation of a run group's checkpoints: samples, exact W2, J_DSM / J_SM, L_s(t), the bound.

A run group is the S seeds of one (experiment, data set, regulariser, T); the checkpoints file
of its training job holds K batched states of every regulariser's seeds, of which the group
reads its own S models. Every function here evaluates all K x S models at once
(one batched ScoreNet, model index k * S + s) and returns a tidy table with one row per
(seed, epoch) or per (seed, epoch, step).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from scorew2.io import load_npz, load_torch, save_torch
from scorew2.jobs import frame
from scorew2.lipschitz import jacobian_max_eig, pairs_max_ratio, paper_grid, region_grid
from scorew2.model import (
    ScoreNet,
    model_regularizers,
    regularizer_slices,
    regularizer_state,
    select_state,
    stack_states,
)
from scorew2.sample import ancestral_sample, make_prior
from scorew2.schedule import Schedule, make_schedule
from scorew2.score import (
    dsm_terms,
    empirical_score_jacobian_eigs,
    noised_points,
    scores_and_floor,
    sm_terms,
)
from scorew2.train import TrainResult

# Points per model per forward pass when evaluating K x S models at once: small enough that the
# (models, points, hidden) activations stay in cache (measured on 300 models: 256 was 2.4x
# faster than 4096; 128 another 1.25x faster than 256 for the L_s Jacobians, the same for
# sampling and the losses).
EVAL_CHUNK = 128
# Models per pass of the loss step: its (models, T, N, d) float64 predictions stay ~100 MB.
LOSS_MODELS = 16
CHECKPOINT_KEYS = ("epochs", "states", "seeds", "regularizer", "n_steps", "hidden")


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoints of a run group as one batched model of K' x S models."""

    model: ScoreNet
    seeds: np.ndarray  # (M,) seed of each model
    epochs: np.ndarray  # (M,) checkpoint epoch of each model


def save_checkpoints(result: TrainResult, path: str | os.PathLike[str]) -> None:
    """Write a training job's checkpoints (every model's weights at every checkpoint epoch;
    ``regularizer``: one name, or one per model for a mixed batch)."""
    save_torch(
        {
            "epochs": list(result.epochs),
            "states": result.states,
            "seeds": [int(s) for s in result.seeds],
            "regularizer": result.regularizer,
            "n_steps": result.n_steps,
            "hidden": result.config["hidden"],
            "loss_history": result.loss_history,
        },
        path,
    )


def load_checkpoints(
    path: str | os.PathLike[str], which: str = "all", regularizer: str | None = None
) -> Checkpoints:
    """Read a checkpoints file written by the train rule: the models of ``regularizer`` (of
    every model when None: a file of one regulariser); ``which``: "all" or "final"."""
    ck = load_torch(path, required=CHECKPOINT_KEYS)
    epochs = [int(e) for e in ck["epochs"]]
    states = list(ck["states"])
    if which == "final":
        epochs, states = epochs[-1:], states[-1:]
    elif which != "all":
        raise ValueError(f"which: expected 'all' or 'final', got {which!r}")
    seeds = [int(s) for s in ck["seeds"]]
    regs = model_regularizers(ck["regularizer"], len(seeds))
    if regularizer is None:
        if len(set(regs)) > 1:
            raise ValueError(
                f"{path}: holds the models of several regularizers {sorted(set(regs))}; "
                "name one (regularizer=...)"
            )
        regularizer = regs[0]
    try:
        states = [regularizer_state(st, regs, regularizer) for st in states]
        seeds = seeds[regularizer_slices(regs)[regularizer]]
        model = ScoreNet.from_state(
            stack_states(states), ck["n_steps"], regularizer, hidden=ck["hidden"]
        )
    except ValueError as err:
        raise ValueError(f"{path}: checkpoints do not fit the network ({err})") from err
    model.eval()
    S = len(seeds)
    return Checkpoints(
        model=model,
        seeds=np.tile(np.asarray(seeds), len(epochs)),
        epochs=np.repeat(np.asarray(epochs), S),
    )


def load_group(
    checkpoints: str | os.PathLike[str], data: str | os.PathLike[str], run: Mapping[str, Any]
) -> tuple[Checkpoints, np.ndarray, Schedule]:
    """What every evaluation step of a run group reads: its checkpoints (its regulariser's
    models, at the epochs that ``run`` evaluates, "all" or "final"), the training set p0, and
    the noise schedule."""
    ck = load_checkpoints(checkpoints, run["checkpoints"], run["regularizer"])
    train = load_npz(data, required=("train",))["train"]
    return ck, train, make_schedule(**run["schedule"])


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


def sample_group(
    ck: Checkpoints, train: np.ndarray, schedule: Schedule, prior: str, n_points: int, seed: int
) -> dict[str, np.ndarray]:
    """Samples q0 of every model, started from q_T = p_T or from N(0, I).

    ``ref`` is a seeded subset of ``n_points`` training points (the p0 that W2 compares with).
    ``pT`` is ``ref`` noised to step T (one draw). With prior "data" the sampler starts from
    those very points (q_T = p_T); with prior "gaussian" from one N(0, I) draw ``xT``. Every
    model gets the same starting points and the same sampler noise (common random numbers),
    so differences between checkpoints are not evaluation noise.
    """
    rng = np.random.default_rng(seed)
    ref = train[np.sort(rng.choice(len(train), size=n_points, replace=False))]
    gen = torch.Generator().manual_seed(seed)
    M = ck.model.n_models
    pT = make_prior("p_T", schedule, gen, n_models=M, data=ref)
    xT = pT if prior == "data" else make_prior("normal", schedule, gen, n_models=M, data=ref)
    out = ancestral_sample(ck.model, schedule, xT, gen, chunk_size=EVAL_CHUNK)
    bad = out.n_nonfinite > 0
    if bad.any():
        m = int(torch.nonzero(bad)[0])
        raise FloatingPointError(
            f"{int(bad.sum())} model(s) produced non-finite samples, first: seed "
            f"{ck.seeds[m]} at epoch {ck.epochs[m]}; W2 would be meaningless"
        )
    res = {"samples": out.x.numpy(), "seeds": ck.seeds, "epochs": ck.epochs, "ref": ref}
    if prior == "gaussian":
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


def loss_group(
    meta: Mapping[str, Any],
    ck: Checkpoints,
    train: np.ndarray,
    schedule: Schedule,
    draws: int,
    seed: int,
) -> pd.DataFrame:
    """J_DSM and J_SM of every model on shared noised points, and the DSM floor.

    Every training point is noised ``draws`` times at every step (scorew2.score.noised_points),
    so the expectation over the empirical p0 is exact and only the noise is Monte Carlo; the
    same points serve every model, so differences between checkpoints are not noise.
    J_DSM = 1/2 sum_i b_i/(1-abar_i) E|eps_theta - eps|^2; J_SM = 1/2 sum_i b_i E|s_theta - s*|^2
    with the exact score s* of the noised empirical data (PAPER section 2). gap_se: the Monte
    Carlo standard error of the estimate of J_DSM - J_SM (which equals dsm_floor in expectation
    for every theta, Theorem 2), so J_SM <= J_DSM is judged within sampling error.
    """
    pts = noised_points(train, schedule, draws, seed)
    T, m, d = pts.xt.shape
    true, floor = scores_and_floor(pts.xt, train, schedule)
    steps = torch.arange(T).repeat_interleave(m)
    jd, js, se = [], [], []
    for sub in _model_chunks(ck.model, LOSS_MODELS):  # bounds memory: (models, T, m, d) floats
        eps_pred = _eps(sub, pts.xt.reshape(T * m, d), steps).double()
        eps_pred = eps_pred.reshape(sub.n_models, T, m, d)
        a, c = dsm_terms(eps_pred, pts.eps, schedule), sm_terms(eps_pred, true, schedule)
        jd.append(a.mean(-1).sum(-1).numpy())
        js.append(c.mean(-1).sum(-1).numpy())
        # standard error of J_DSM - J_SM over the m points (each point's terms summed over steps)
        se.append(((a - c).sum(-2).std(-1) / np.sqrt(m)).numpy())
    return frame(
        meta,
        ck.seeds,
        ck.epochs,
        jdsm=np.concatenate(jd),
        jsm=np.concatenate(js),
        gap_se=np.concatenate(se),
        dsm_floor=float(floor),
    )


def lipschitz_group(
    meta: Mapping[str, Any],
    ck: Checkpoints,
    train: np.ndarray,
    schedule: Schedule,
    grid: int,
    seed: int,
    prior: str,
    n_paths: int,
) -> pd.DataFrame:
    """One-sided Lipschitz estimates L_s(i) of every model's score at every step i.

    Each is a max of lambda_max of the symmetric part of the Jacobian of s_theta(., i) =
    -eps_theta(., i) / sqrt(1 - abar_i) over a point set:
    - L_grid: a ``grid`` x ``grid`` lattice covering the bounding box of the training points
      noised to step i (one draw, ``seed``): where p_i lives;
    - L_path: the states x_i of the model's own sampler (``n_paths`` chains from ``prior``,
      the experiment's q_T): where q_i lives, which for a bad model is far from the data;
    - L_s = max(L_grid, L_path): the estimate the bound uses (the theorem needs the sup over
      the space that both processes visit).
    - L_paper: the authors' estimator, max over pairs of the 10 x 10 grid on [0, 0.9]^2.
    - L_exact: L_grid's estimator applied to the exact score of the noised training set.
    All are LOWER estimates of the sup over the plane (PAPER section 3): not certified.
    """
    pts = noised_points(train, schedule, 1, seed)
    model, M = ck.model, ck.model.n_models
    rng = np.random.default_rng(seed)
    start = train[np.sort(rng.choice(len(train), size=min(n_paths, len(train)), replace=False))]
    gen = torch.Generator().manual_seed(seed)
    kind = "p_T" if prior == "data" else "normal"
    xT = make_prior(kind, schedule, gen, n_models=M, data=start)
    paths = ancestral_sample(model, schedule, xT, gen, chunk_size=EVAL_CHUNK, keep_path=True).path
    pg = paper_grid()
    L_grid, L_path, L_paper = (np.empty((M, schedule.T)) for _ in range(3))
    L_exact = np.empty(schedule.T)
    for i in range(schedule.T):
        inv_sd = 1.0 / float(np.sqrt(1.0 - schedule.alpha_bars[i]))
        region = region_grid(pts.xt[i], grid)

        def field(x: torch.Tensor, i: int = i, inv_sd: float = inv_sd) -> torch.Tensor:
            t = torch.full(x.shape[:2], i, dtype=torch.long)
            return -model(x.float(), t).double() * inv_sd

        L_grid[:, i] = jacobian_max_eig(field, region, n_fields=M, chunk_size=EVAL_CHUNK).numpy()
        # chains that left float range carry no information: stand them on a region point
        on_path = paths[i].double()
        on_path[~torch.isfinite(on_path).all(-1)] = region[0]
        L_path[:, i] = jacobian_max_eig(field, on_path, chunk_size=EVAL_CHUNK).numpy()
        with torch.no_grad():
            vals = field(pg.expand(M, -1, -1))
        L_paper[:, i] = [pairs_max_ratio(v, pg) for v in vals]
        eigs = empirical_score_jacobian_eigs(region, train, float(schedule.alpha_bars[i]))
        L_exact[i] = float(eigs.max())
    return frame(
        meta,
        np.repeat(ck.seeds, schedule.T),
        np.repeat(ck.epochs, schedule.T),
        step=np.tile(np.arange(schedule.T), M),
        L_s=np.maximum(L_grid, L_path).reshape(-1),
        L_grid=L_grid.reshape(-1),
        L_path=L_path.reshape(-1),
        L_paper=L_paper.reshape(-1),
        L_exact=np.tile(L_exact, M),
    )
