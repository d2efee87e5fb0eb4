"""Per-checkpoint metrics from stored samples and tables, without the network (no torch).

Exact W2 of the samples a run group's checkpoints produced (scorew2.wasserstein), and the
bound of Corollary 1 assembled from the W2, loss and Lipschitz tables (scorew2.bound).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scorew2.bound import corollary2_offset, log_bound, log_I, log_intercept, offset
from scorew2.runs import CHECKPOINT_KEYS, GroupId, frame
from scorew2.schedule import Schedule
from scorew2.wasserstein import w2, w2_many

__all__ = ["bound_group", "w2_group"]


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


def bound_group(
    w2s: pd.DataFrame,
    losses: pd.DataFrame,
    lips: pd.DataFrame,
    schedule: Schedule,
    certified: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per checkpoint: the bound of Corollary 1 from its own L_s, and whether W2 exceeds it.

    log_intercept = 1/2 log(2 sum_i b_i I_i^2), log I_i = sum_{j<=i} (b_j/2 + L_s(j) b_j), with
    L_s (ours: max of the grid and sampler-path estimates) and L_paper (the authors'
    estimator); offset = I_T W2(p_T, q_T) (0 when q_T = p_T);
    log_bound = log(exp(log_intercept) sqrt(J_DSM) + offset); violation: W2 above its bound.
    corollary2_offset = exp(sum_i b_i L_s(i)) W2(p0, N(0, I)) (Corollary 2).
    ``certified`` (the certify rule's table, final models): the same bound with the certified
    upper bounds of L_s (``_certified_columns``).
    """
    keys = list(CHECKPOINT_KEYS)
    wide = lips.pivot_table(index=keys, columns="step", values=["L_s", "L_paper", "L_exact"])
    L = wide["L_s"].sort_index(axis=1).to_numpy()
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
    rows = lip.set_index(keys).index.get_indexer(df.set_index(keys).index)
    L_rows = L[rows]
    df["offset"] = offset(schedule.betas, L_rows, df["w2_T"].to_numpy())
    prior_w2 = df["w2_p0_prior"].to_numpy()
    has_prior = np.isfinite(prior_w2)  # NaN when q_T = p_T: Corollary 2 does not apply
    cor2 = np.full(len(df), np.nan)
    if has_prior.any():
        cor2[has_prior] = corollary2_offset(schedule.betas, L_rows[has_prior], prior_w2[has_prior])
    df["corollary2_offset"] = cor2
    df = df.assign(**_offset_variants(df, wide, rows, schedule))
    df["log_bound"] = log_bound(
        np.log(df["jdsm"].to_numpy()), schedule.betas, L_rows, df["offset"].to_numpy()
    )
    df["violation"] = np.log(df["w2"].to_numpy()) > df["log_bound"].to_numpy()
    if certified is not None:
        df = _certified_columns(df, lips, certified, schedule)
    return df.sort_values(["seed", "epoch"], kind="stable").reset_index(drop=True)


OFFSET_ESTIMATORS = {"": "L_s", "_paper": "L_paper", "_exact": "L_exact"}
"""Column suffix of each offset variant -> the L_s estimator it uses (lipschitz.csv)."""


def _offset_variants(
    df: pd.DataFrame, wide: pd.DataFrame, rows: np.ndarray, schedule: Schedule
) -> dict[str, np.ndarray]:
    """The offset in each form with each L_s estimator (the claims' variants, issue 12):

    offset{sfx} = I_T W2(p_T, q_T) (Corollary 1, the empirical W2 at its noise floor),
    corollary2_offset{sfx} = exp(sum_i b_i L_i) W2(p0, N(0, I)) (Corollary 2),
    contraction_offset{sfx} = I_T sqrt(abar_T) W2(p0, N(0, I)) (the discrete chain's
    contraction W2(p_T, N(0, I)) <= sqrt(abar_T) W2(p0, N(0, I)) in place of the measured W2),
    with L_i by ours (no suffix), the authors' estimator (_paper) or the exact score of the
    noised training set (_exact). The forms with W2(p0, N(0, I)) are NaN when q_T = p_T.
    ``offset`` and ``corollary2_offset`` with our L_s are computed by ``bound_frame``.
    """
    prior = df["w2_p0_prior"].to_numpy()
    has = np.isfinite(prior)
    contracted = np.sqrt(schedule.alpha_bars[-1]) * prior[has]
    out = {}
    for sfx, col in OFFSET_ESTIMATORS.items():
        L = wide[col].sort_index(axis=1).to_numpy()[rows]
        if sfx:
            out[f"offset{sfx}"] = offset(schedule.betas, L, df["w2_T"].to_numpy())
            out[f"corollary2_offset{sfx}"] = np.full(len(df), np.nan)
            if has.any():
                out[f"corollary2_offset{sfx}"][has] = corollary2_offset(
                    schedule.betas, L[has], prior[has]
                )
        out[f"contraction_offset{sfx}"] = np.full(len(df), np.nan)
        if has.any():
            out[f"contraction_offset{sfx}"][has] = offset(schedule.betas, L[has], contracted)
    return out


def _certified_columns(
    df: pd.DataFrame, lips: pd.DataFrame, certified: pd.DataFrame, schedule: Schedule
) -> pd.DataFrame:
    """The bound from the certified L_s (upper bounds over the certify rule's region).

    Per certified checkpoint: log_intercept_cert, offset_cert, log_bound_cert (Corollary 1
    with L_cert_upper in place of L_s), violation_cert, and L_gap_max = max_i (L_cert_upper(i)
    - L_s(i)), how far the estimate falls below the certificate. NaN (and False) elsewhere.
    """
    keys = list(CHECKPOINT_KEYS)
    up = certified.pivot_table(index=keys, columns="step", values="L_cert_upper")
    up = up.sort_index(axis=1)
    if up.shape[1] != schedule.T:
        raise ValueError(f"certified table: {up.shape[1]} steps, schedule has {schedule.T}")
    est = lips.pivot_table(index=keys, columns="step", values="L_s").sort_index(axis=1)
    cert = up.index.to_frame(index=False)
    U = up.to_numpy()
    cert["log_intercept_cert"] = log_intercept(schedule.betas, U)
    cert["L_gap_max"] = (U - est.reindex(up.index).to_numpy()).max(axis=1)
    out = df.merge(cert, on=keys, how="left", validate="one_to_one")
    rows = up.index.get_indexer(out.set_index(keys).index)
    has = rows >= 0
    if len(cert) and has.sum() != len(cert):
        raise ValueError("certified table: checkpoints that the w2 and losses tables lack")
    for col in ("offset_cert", "log_bound_cert"):
        out[col] = np.nan
    if has.any():
        U_rows, sub = U[rows[has]], out[has]
        off = offset(schedule.betas, U_rows, sub["w2_T"].to_numpy())
        out.loc[has, "offset_cert"] = off
        out.loc[has, "log_bound_cert"] = log_bound(
            np.log(sub["jdsm"].to_numpy()), schedule.betas, U_rows, off
        )
    out["certified"] = has
    out["violation_cert"] = has & (
        np.log(out["w2"].to_numpy()) > out["log_bound_cert"].fillna(np.inf)
    )
    return out
