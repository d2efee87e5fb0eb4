"""Evaluation of a run group's checkpoints: samples, exact W2, J_DSM / J_SM, L_s(t), the bound.

A run group is the S seeds of one (experiment, data set, regulariser, T); its checkpoints file
holds K batched states of S models. Every function here evaluates all K x S models at once
(one batched ScoreNet, model index k * S + s) and returns a tidy table with one row per
(seed, epoch) or per (seed, epoch, step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from scorew2.bound import corollary2_offset, log_bound, log_I, log_intercept, offset
from scorew2.io import load_torch
from scorew2.lipschitz import jacobian_max_eig, pairs_max_ratio, paper_grid, region_grid
from scorew2.model import ScoreNet, stack_states
from scorew2.sample import ancestral_sample, noise_to_step
from scorew2.schedule import Schedule
from scorew2.score import (
    dsm_floor,
    empirical_score_jacobian_eigs,
    exact_scores,
    j_dsm,
    j_sm,
    noised_points,
)
from scorew2.wasserstein import w2

CHECKPOINT_KEYS = ("epochs", "states", "seeds", "regularizer", "n_steps", "hidden")
ID_COLUMNS = ("experiment", "dataset", "regularizer", "T")


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoints of a run group as one batched model of K' x S models."""

    model: ScoreNet
    seeds: np.ndarray  # (M,) seed of each model
    epochs: np.ndarray  # (M,) checkpoint epoch of each model


def load_checkpoints(path: str, which: str = "all") -> Checkpoints:
    """Read a checkpoints file written by the train rule; ``which``: "all" or "final"."""
    ck = load_torch(path, required=CHECKPOINT_KEYS)
    epochs = [int(e) for e in ck["epochs"]]
    states = list(ck["states"])
    if which == "final":
        epochs, states = epochs[-1:], states[-1:]
    elif which != "all":
        raise ValueError(f"which: expected 'all' or 'final', got {which!r}")
    seeds = [int(s) for s in ck["seeds"]]
    try:
        model = ScoreNet.from_state(
            stack_states(states), ck["n_steps"], ck["regularizer"], hidden=ck["hidden"]
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


def _frame(
    meta: Mapping[str, Any], seeds: np.ndarray, epochs: np.ndarray, **columns: Any
) -> pd.DataFrame:
    """A table with the group's identity columns, then seed, epoch and ``columns``."""
    df = pd.DataFrame({"seed": seeds, "epoch": epochs, **columns})
    for i, key in enumerate(ID_COLUMNS):
        df.insert(i, key, meta[key])
    return df


def _eps(model: ScoreNet, x: torch.Tensor, step: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
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
    With prior "data", each model's x_T is ``ref`` noised to step T (its own noise draw) and the
    sampler runs back from those very points, so q_T = p_T. With prior "gaussian", x_T ~ N(0, I)
    and ``pT`` (``ref`` noised to step T) is kept for W2(p_T, q_T).
    """
    rng = np.random.default_rng(seed)
    ref = train[np.sort(rng.choice(len(train), size=n_points, replace=False))]
    gen = torch.Generator().manual_seed(seed)
    M = ck.model.n_models
    x0 = torch.as_tensor(ref, dtype=torch.float32).expand(M, -1, -1)
    pT = noise_to_step(x0, float(schedule.alpha_bars[-1]), gen)
    xT = pT if prior == "data" else torch.randn(pT.shape, generator=gen)
    samples = ancestral_sample(ck.model, schedule, xT, gen)
    bad = ~torch.isfinite(samples).all(dim=(1, 2))
    if bad.any():
        m = int(torch.nonzero(bad)[0])
        raise FloatingPointError(
            f"{int(bad.sum())} model(s) produced non-finite samples, first: seed "
            f"{ck.seeds[m]} at epoch {ck.epochs[m]}; W2 would be meaningless"
        )
    out = {
        "samples": samples.numpy(),
        "seeds": ck.seeds,
        "epochs": ck.epochs,
        "ref": ref,
    }
    if prior == "gaussian":
        out["pT"] = pT.numpy()
        out["xT"] = xT.numpy()
    return out


def w2_group(
    meta: Mapping[str, Any], samples: Mapping[str, np.ndarray], fresh: np.ndarray
) -> pd.DataFrame:
    """Exact W2(p0, q0) per model, the sampling noise floor, and W2(p_T, q_T) for a prior.

    w2_floor = W2(ref, an independent draw of the same law, as many points): what a model
    that learned the law (not the training set) would score. For prior N(0, I): w2_T =
    W2(p_T, q_T) per model and w2_p0_prior = W2(p0, q_T) (Corollary 2's factor).
    """
    ref, q0 = samples["ref"], samples["samples"]
    n = len(ref)
    floor = w2(ref, fresh[:n])
    w2_q0 = np.array([w2(ref, q) for q in q0])
    if "xT" in samples:
        w2_T = np.array([w2(p, q) for p, q in zip(samples["pT"], samples["xT"], strict=True)])
        w2_prior = np.array([w2(ref, q) for q in samples["xT"]])
    else:
        w2_T = np.zeros(len(q0))
        w2_prior = np.full(len(q0), np.nan)
    return _frame(
        meta,
        samples["seeds"],
        samples["epochs"],
        w2=w2_q0,
        w2_floor=floor,
        w2_T=w2_T,
        w2_p0_prior=w2_prior,
    )


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
    with the exact score s* of the noised empirical data (PAPER section 2).
    """
    pts = noised_points(train, schedule, draws, seed)
    T, m, d = pts.xt.shape
    true = exact_scores(pts.xt, train, schedule.alpha_bars)
    steps = torch.arange(T).repeat_interleave(m)
    eps_pred = _eps(ck.model, pts.xt.reshape(T * m, d), steps).double()
    eps_pred = eps_pred.reshape(ck.model.n_models, T, m, d)
    jd = j_dsm(eps_pred, pts.eps, schedule).numpy()
    js = j_sm(eps_pred, true, schedule).numpy()
    floor = float(dsm_floor(pts.xt, train, schedule))
    return _frame(meta, ck.seeds, ck.epochs, jdsm=jd, jsm=js, dsm_floor=floor)


def lipschitz_group(
    meta: Mapping[str, Any],
    ck: Checkpoints,
    train: np.ndarray,
    schedule: Schedule,
    grid: int,
    seed: int,
) -> pd.DataFrame:
    """One-sided Lipschitz estimates L_s(i) of every model's score at every step i.

    - L_grid: max over a ``grid`` x ``grid`` lattice covering the bounding box of the training
      points noised to step i (one draw, ``seed``) of lambda_max of the symmetric part of the
      Jacobian of s_theta(., i) = -eps_theta(., i) / sqrt(1 - abar_i). Our estimator.
    - L_paper: the authors' estimator, max over pairs of the 10 x 10 grid on [0, 0.9]^2.
    - L_exact: L_grid's estimator applied to the exact score of the noised training set.
    All three are LOWER estimates of the sup over the plane (PAPER section 3).
    """
    pts = noised_points(train, schedule, 1, seed)
    model, M = ck.model, ck.model.n_models
    pg = paper_grid()
    L_grid = np.empty((M, schedule.T))
    L_paper = np.empty((M, schedule.T))
    L_exact = np.empty(schedule.T)
    for i in range(schedule.T):
        inv_sd = 1.0 / float(np.sqrt(1.0 - schedule.alpha_bars[i]))
        region = region_grid(pts.xt[i], grid)

        def field(x: torch.Tensor, i: int = i, inv_sd: float = inv_sd) -> torch.Tensor:
            t = torch.full(x.shape[:2], i, dtype=torch.long)
            return -model(x.float(), t).double() * inv_sd

        L_grid[:, i] = jacobian_max_eig(field, region, n_fields=M).numpy()
        with torch.no_grad():
            vals = field(pg.expand(M, -1, -1))
        L_paper[:, i] = [pairs_max_ratio(v, pg) for v in vals]
        eigs = empirical_score_jacobian_eigs(region, train, float(schedule.alpha_bars[i]))
        L_exact[i] = float(eigs.max())
    steps = np.tile(np.arange(schedule.T), M)
    df = _frame(
        meta,
        np.repeat(ck.seeds, schedule.T),
        np.repeat(ck.epochs, schedule.T),
        step=steps,
        L_grid=L_grid.reshape(-1),
        L_paper=L_paper.reshape(-1),
        L_exact=np.tile(L_exact, M),
    )
    return df


def bound_group(
    w2s: pd.DataFrame, losses: pd.DataFrame, lips: pd.DataFrame, schedule: Schedule
) -> pd.DataFrame:
    """Per checkpoint: the bound of Corollary 1 from its own L_s, and whether W2 exceeds it.

    log_intercept = 1/2 log(2 sum_i b_i I_i^2), log I_i = sum_{j<=i} (b_j/2 + L_s(j) b_j), with
    L_grid (ours) and L_paper (the authors' estimator); offset = I_T W2(p_T, q_T) (0 when
    q_T = p_T); log_bound = log(exp(log_intercept) sqrt(J_DSM) + offset); violation: W2 above
    its bound. corollary2_offset = exp(sum_i b_i L_s(i)) W2(p0, N(0, I)) (Corollary 2).
    """
    keys = [*ID_COLUMNS, "seed", "epoch"]
    wide = lips.pivot_table(index=keys, columns="step", values=["L_grid", "L_paper"])
    L = wide["L_grid"].sort_index(axis=1).to_numpy()
    Lp = wide["L_paper"].sort_index(axis=1).to_numpy()
    if L.shape[1] != schedule.T:
        raise ValueError(f"lipschitz table: {L.shape[1]} steps, schedule has {schedule.T}")
    lip = wide.index.to_frame(index=False)
    lip["log_intercept"] = log_intercept(schedule.betas, L)
    lip["log_intercept_paper"] = log_intercept(schedule.betas, Lp)
    lip["log_I_T"] = log_I(schedule.betas, L)[:, -1]
    df = losses.merge(w2s, on=keys, validate="one_to_one").merge(
        lip, on=keys, validate="one_to_one"
    )
    if len(df) != len(losses) or len(df) != len(w2s):
        raise ValueError(
            f"w2 ({len(w2s)} rows), losses ({len(losses)}) and lipschitz ({len(lip)}) tables "
            "do not cover the same checkpoints"
        )
    L_rows = L[lip.set_index(keys).index.get_indexer(df.set_index(keys).index)]
    df["offset"] = offset(schedule.betas, L_rows, df["w2_T"].to_numpy())
    df["corollary2_offset"] = corollary2_offset(
        schedule.betas, L_rows, df["w2_p0_prior"].to_numpy()
    )
    df["log_bound"] = log_bound(
        np.log(df["jdsm"].to_numpy()), schedule.betas, L_rows, df["offset"].to_numpy()
    )
    df["violation"] = np.log(df["w2"].to_numpy()) > df["log_bound"].to_numpy()
    return df.sort_values(["seed", "epoch"], kind="stable").reset_index(drop=True)
