"""The bound of Corollary 1 per checkpoint, assembled from a run group's tables (no torch).

Reads the W2 table (scorew2.metrics), the loss table, the L_s table of every estimator and the
certified L_s (final models), and writes one row per checkpoint: the intercept, the offset in
each form with each L_s, the bound and whether W2 exceeds it (formulas: scorew2.bound).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scorew2.bound import corollary2_offset, log_bound, log_I, log_intercept, offset
from scorew2.runs import CHECKPOINT_KEYS
from scorew2.schedule import Schedule

__all__ = ["ESTIMATED", "OFFSET_ESTIMATORS", "OFFSET_FORMS", "bound_group", "offset_forms"]

ESTIMATED = {"": "L_s", "_paper": "L_paper", "_exact": "L_exact"}
"""Column suffix of each offset variant -> the estimated L_s it uses (lipschitz.csv)."""
OFFSET_ESTIMATORS = {**ESTIMATED, "_cert": "L_cert_upper"}
"""Every offset variant's suffix -> its L_s, the certified upper bound (certified.csv) last."""
OFFSET_FORMS = ("offset", "corollary2_offset", "contraction_offset")
"""The offset's forms, column names before the estimator's suffix (``offset_forms``)."""


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
    estimator); the offset in every form of ``offset_forms`` with every estimator of
    ``ESTIMATED``; log_bound = log(exp(log_intercept) sqrt(J_DSM) + offset) with offset =
    I_T W2(p_T, q_T) (0 when q_T = p_T); violation: W2 above its bound. ``certified`` (the
    certify rule's table, final models): the same with the certified upper bounds of L_s
    (``_certified_columns``); None (no certificate: d > 2) gives the same columns, NaN and
    False.
    """
    keys = list(CHECKPOINT_KEYS)
    wide = lips.pivot_table(index=keys, columns="step", values=list(ESTIMATED.values()))
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
    df = df.assign(**_offset_variants(df, wide, rows, schedule))
    df["log_bound"] = log_bound(
        np.log(df["jdsm"].to_numpy()), schedule.betas, L[rows], df["offset"].to_numpy()
    )
    df["violation"] = np.log(df["w2"].to_numpy()) > df["log_bound"].to_numpy()
    df = _certified_columns(df, lips, certified, schedule)
    return df.sort_values(["seed", "epoch"], kind="stable").reset_index(drop=True)


def offset_forms(
    schedule: Schedule, L: np.ndarray, w2_T: np.ndarray, prior: np.ndarray
) -> dict[str, np.ndarray]:
    """The offset in each form (``OFFSET_FORMS``) for rows of L_s(i) (shape (n, T)):

    offset = I_T W2(p_T, q_T) (Corollary 1; the empirical W2 sits at its noise floor once
    p_T is close to N(0, I)), corollary2_offset = exp(sum_i b_i L_i) W2(p0, N(0, I))
    (Corollary 2), contraction_offset = I_T sqrt(abar_T) W2(p0, N(0, I)) (the discrete
    chain's contraction W2(p_T, N(0, I)) <= sqrt(abar_T) W2(p0, N(0, I)) in place of the
    measured W2). ``prior`` = W2(p0, N(0, I)) per row, NaN when q_T = p_T (both forms that
    use it are NaN there).
    """
    has = np.isfinite(prior)
    out = {"offset": offset(schedule.betas, L, w2_T)}
    for form in OFFSET_FORMS[1:]:
        out[form] = np.full(len(L), np.nan)
    if has.any():
        out["corollary2_offset"][has] = corollary2_offset(schedule.betas, L[has], prior[has])
        contracted = np.sqrt(schedule.alpha_bars[-1]) * prior[has]
        out["contraction_offset"][has] = offset(schedule.betas, L[has], contracted)
    return out


def _offset_variants(
    df: pd.DataFrame, wide: pd.DataFrame, rows: np.ndarray, schedule: Schedule
) -> dict[str, np.ndarray]:
    """Every form of ``offset_forms`` with every estimated L_s of ``ESTIMATED``: column
    ``form + suffix``, in the order of bound.csv (ours first, then form-major per estimator)."""
    w2_T, prior = df["w2_T"].to_numpy(), df["w2_p0_prior"].to_numpy()
    forms = {
        sfx: offset_forms(schedule, wide[col].sort_index(axis=1).to_numpy()[rows], w2_T, prior)
        for sfx, col in ESTIMATED.items()
    }
    out = dict(forms[""])
    for sfx in list(ESTIMATED)[1:]:
        out |= {form + sfx: values for form, values in forms[sfx].items()}
    return out


def _uncertified_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``_certified_columns`` where no checkpoint has a certificate: NaN, and False."""
    nan = dict.fromkeys(
        ("log_intercept_cert", "L_gap_max", "offset_cert", "log_bound_cert"), np.nan
    )
    late = {f + "_cert": np.nan for f in OFFSET_FORMS[1:]}
    return df.assign(**nan, certified=False, violation_cert=False, **late)


def _certified_columns(
    df: pd.DataFrame, lips: pd.DataFrame, certified: pd.DataFrame | None, schedule: Schedule
) -> pd.DataFrame:
    """The bound from the certified L_s (upper bounds over the certify rule's region).

    Per certified checkpoint: log_intercept_cert, offset_cert, log_bound_cert (Corollary 1
    with L_cert_upper in place of L_s), violation_cert, L_gap_max = max_i (L_cert_upper(i)
    - L_s(i)) (how far the estimate falls below the certificate), and the two other forms of
    ``offset_forms`` with the certified L_s (corollary2_offset_cert, contraction_offset_cert).
    NaN (and False) elsewhere, and everywhere when ``certified`` is None.
    """
    if certified is None:
        return _uncertified_columns(df)
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
    late = [f + "_cert" for f in OFFSET_FORMS[1:]]
    for col in ("offset_cert", "log_bound_cert", *late):
        out[col] = np.nan
    if has.any():
        U_rows, sub = U[rows[has]], out[has]
        forms = offset_forms(
            schedule, U_rows, sub["w2_T"].to_numpy(), sub["w2_p0_prior"].to_numpy()
        )
        out.loc[has, "offset_cert"] = forms["offset"]
        out.loc[has, "log_bound_cert"] = log_bound(
            np.log(sub["jdsm"].to_numpy()), schedule.betas, U_rows, forms["offset"]
        )
        for form in OFFSET_FORMS[1:]:
            out.loc[has, form + "_cert"] = forms[form]
    out["certified"] = has
    out["violation_cert"] = has & (
        np.log(out["w2"].to_numpy()) > out["log_bound_cert"].fillna(np.inf)
    )
    return out[[c for c in out.columns if c not in late] + late]
