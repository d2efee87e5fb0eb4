"""The Wasserstein bound of Kwon, Fan & Lee (docs/paper.md section 3), in log space.

With L_i = L_s(i) the one-sided Lipschitz constant of the model score at step i (f = -b/2 x,
so L_f = b/2, and g^2 = b):

    log I_i = sum_{j<=i} (b_j / 2 + L_j b_j)                          (I(t) = exp int L_f + L_s g^2)
    W2(p0, q0) <= sqrt(2 sum_i b_i I_i^2) sqrt(J_DSM) + I_T W2(p_T, q_T)   (Corollary 1 + 3)
    Corollary 2 (prior q_T = N(0, I)): offset = exp(sum_i b_i L_i) W2(p0, N(0, I)).

Everything is computed in float64 numpy; ``lipschitz`` may carry leading batch dimensions
(..., T) (e.g. one row per checkpoint) and the results then have shape (...). The bound is only
as certified as the L_i it is given (see scorew2.lipschitz: finite-set estimates are lower
estimates).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from scorew2._checks import to_numpy
from scorew2.schedule import Schedule

__all__ = ["corollary2_offset", "log_I", "log_bound", "log_intercept", "offset"]


def _inputs(betas: Any, lipschitz: Any) -> tuple[np.ndarray, np.ndarray]:
    b = betas.betas if isinstance(betas, Schedule) else to_numpy(betas, "betas")
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"betas: expected a non-empty 1-D array, got shape {b.shape}")
    if not np.isfinite(b).all():
        raise ValueError("betas: contains NaN or infinite values")
    if (b <= 0).any():
        raise ValueError("betas: every beta must be > 0")
    L = to_numpy(lipschitz, "lipschitz")
    if L.ndim == 0 or L.shape[-1] != b.size:
        raise ValueError(
            f"lipschitz: expected shape (..., T={b.size}) to match betas, got {L.shape}"
        )
    if not np.isfinite(L).all():
        raise ValueError("lipschitz: contains NaN or infinite values")
    return b, L


def _out(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def log_I(betas: Any, lipschitz: Any) -> np.ndarray:
    """log I_i = sum_{j<=i} (b_j / 2 + L_j b_j): shape (..., T) like ``lipschitz``."""
    b, L = _inputs(betas, lipschitz)
    return np.cumsum(b * (0.5 + L), axis=-1)


def log_intercept(betas: Any, lipschitz: Any) -> float | np.ndarray:
    """1/2 log(2 sum_i b_i I_i^2), by log-sum-exp: the intercept of the log-log bound line.

    Returns a float for 1-D ``lipschitz``, else an array of its leading shape.
    """
    b, L = _inputs(betas, lipschitz)
    li = np.cumsum(b * (0.5 + L), axis=-1)
    return _out(0.5 * (np.log(2.0) + logsumexp(np.log(b) + 2.0 * li, axis=-1)))


def log_bound(log_jdsm: Any, betas: Any, lipschitz: Any, offset: Any = 0.0) -> float | np.ndarray:
    """log( sqrt(2 sum_i b_i I_i^2) sqrt(J_DSM) + offset ) (Corollary 1 with Corollary 3).

    log_jdsm broadcasts against the leading shape of ``lipschitz`` (and ``offset``, >= 0, with
    both). Computed as logaddexp(intercept + log_jdsm / 2, log offset): no overflow for huge J.
    """
    lj = to_numpy(log_jdsm, "log_jdsm")
    if np.isnan(lj).any():
        raise ValueError("log_jdsm: contains NaN")
    off = to_numpy(offset, "offset")
    if np.isnan(off).any() or (off < 0).any():
        raise ValueError("offset: must be >= 0 (and not NaN)")
    head = log_intercept(betas, lipschitz) + 0.5 * lj
    with np.errstate(divide="ignore"):
        log_off = np.log(off)
    return _out(np.logaddexp(head, log_off))


def offset(betas: Any, lipschitz: Any, w2_T: Any) -> float | np.ndarray:
    """I_T W2(p_T, q_T), with I_T = exp(log_I[..., -1]) (Corollary 1's second term).

    Computed as exp(log I_T + log W2): exactly 0 when q_T = p_T (W2 = 0) however large I_T is,
    and +inf (a vacuous bound, reported as such) when I_T W2 overflows.
    """
    w = to_numpy(w2_T, "w2_T")
    if np.isnan(w).any() or (w < 0).any():
        raise ValueError("w2_T: must be >= 0 (and not NaN)")
    with np.errstate(divide="ignore", over="ignore"):
        return _out(np.exp(log_I(betas, lipschitz)[..., -1] + np.log(w)))


def corollary2_offset(betas: Any, lipschitz: Any, w2_p0_prior: Any) -> float | np.ndarray:
    """exp(sum_i b_i L_i) W2(p0, N(0, I)) (Corollary 2, DDPM with prior q_T = N(0, I)).

    This is I_T W2(p_T, N(0, I)) with the continuous-time contraction
    W2(p_T, N(0, I)) <= exp(-sum_i b_i / 2) W2(p0, N(0, I)). (The discrete forward chain
    contracts by sqrt(abar_T) = exp(sum_i log(1 - b_i) / 2), slightly stronger.)
    """
    b, L = _inputs(betas, lipschitz)
    w = to_numpy(w2_p0_prior, "w2_p0_prior")
    if np.isnan(w).any() or (w < 0).any():
        raise ValueError("w2_p0_prior: must be >= 0 (and not NaN)")
    with np.errstate(divide="ignore", over="ignore"):
        return _out(np.exp((b * L).sum(axis=-1) + np.log(w)))
