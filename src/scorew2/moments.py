"""W2 of a law and a sample bracketed by their first two moments (any dimension, no torch).

For laws mu, nu on R^d with means m, n and covariances S, R:

- Gelbrich's lower bound (Gelbrich 1990; equality when both are Gaussian):

      W2(mu, nu)^2 >= |m - n|^2 + tr S + tr R - 2 tr (S^(1/2) R S^(1/2))^(1/2),

  the W2 between the Gaussians with those moments (``gaussian_w2``). Its error in d
  dimensions from a sample of n points is O(sqrt(d / n)) (moments), not the n^(-1/d) of the
  empirical W2: a low-variance proxy of W2(p0, q0) where the empirical W2 is at its floor.
- The triangle through the point mass at m: W2(mu, nu) <= sqrt(tr S) + sqrt(E_nu |Y - m|^2)
  (``trivial_upper``): what any bound of W2 must beat to say something.

``law_moments`` gives the population moments of the dimension sweep's laws
(``scorew2.highdim``); ``sample_moments`` those of a sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scorew2._checks import as_points, check_choice
from scorew2.data import DEFAULTS
from scorew2.highdim import DIM_SETS

__all__ = ["gaussian_w2", "law_moments", "sample_moments", "trivial_upper"]


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (eigenvalues below 0 set to 0)."""
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def gaussian_w2(m1: Any, S1: Any, m2: Any, S2: Any) -> float:
    """W2(N(m1, S1), N(m2, S2)) = sqrt(|m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^½ S2 S1^½)^½).

    Raises ValueError for means and covariances of mismatched or non-square shapes.
    """
    m1, m2 = np.asarray(m1, dtype=np.float64), np.asarray(m2, dtype=np.float64)
    S1, S2 = np.asarray(S1, dtype=np.float64), np.asarray(S2, dtype=np.float64)
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,) or S1.shape != (d, d) or S2.shape != (d, d):
        raise ValueError(
            f"means (d,) and covariances (d, d) of one d expected, got {m1.shape}, "
            f"{S1.shape}, {m2.shape}, {S2.shape}"
        )
    r1 = _psd_sqrt(S1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ S2 @ r1), 0.0, None)).sum()
    sq = np.sum((m1 - m2) ** 2) + np.trace(S1) + np.trace(S2) - 2.0 * cross
    return float(np.sqrt(max(sq, 0.0)))


def sample_moments(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (divided by n: the empirical law's own) of points x (n, d)."""
    pts = as_points(x, "x")
    mean = pts.mean(axis=0)
    dev = pts - mean
    return mean, dev.T @ dev / len(pts)


def law_moments(base: str, dim: int, **params: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a dimension-sweep law (``scorew2.highdim``) in ``dim`` dims.

    Gaussian: (0, v I). Four balanced clusters N((+-c, +-c, 0, ..., 0), sigma^2 I): mean 0,
    covariance diag(c^2 + sigma^2, c^2 + sigma^2, sigma^2, ..., sigma^2) (the signs of the two
    centre coordinates are independent, so no cross terms).
    """
    check_choice(base, DIM_SETS, "data set")
    p = {**DEFAULTS[base], **params}
    if base == "gaussian":
        return np.zeros(dim), p["var"] * np.eye(dim)
    diag = np.full(dim, p["std"] ** 2)
    diag[:2] += p["center"] ** 2
    return np.zeros(dim), np.diag(diag)


def trivial_upper(mean: Any, cov: Any, y: Any) -> float:
    """sqrt(tr S) + sqrt(mean_j |y_j - m|^2): W2 between the law (m, S) and the points y by
    the triangle through the point mass at m."""
    pts = as_points(y, "y")
    m = np.asarray(mean, dtype=np.float64)
    return float(np.sqrt(np.trace(cov)) + np.sqrt(np.mean(np.sum((pts - m) ** 2, axis=1))))
