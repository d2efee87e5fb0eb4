"""Noise schedules of the discrete DDPM (the VP-SDE with dt = 1), PAPER section 1.

For steps i = 0..T-1 with betas b_i: a_i = 1 - b_i and abar_i = prod_{j<=i} a_j, and the
forward process is x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) eps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scorew2._checks import check_choice

SCHEDULES = ("linear", "quadratic", "sigmoid")


@dataclass(frozen=True)
class Schedule:
    """Betas b_i of a T-step schedule and the quantities derived from them (float64)."""

    betas: np.ndarray

    def __post_init__(self) -> None:
        b = np.asarray(self.betas, dtype=np.float64)
        if b.ndim != 1 or b.size < 1:
            raise ValueError(f"betas: expected a non-empty 1-D array, got shape {b.shape}")
        if not np.isfinite(b).all() or (b <= 0).any() or (b >= 1).any():
            raise ValueError("betas: every beta must lie in the open interval (0, 1)")
        object.__setattr__(self, "betas", b)

    @property
    def T(self) -> int:
        """Number of steps."""
        return int(self.betas.size)

    @property
    def alphas(self) -> np.ndarray:
        """a_i = 1 - b_i."""
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> np.ndarray:
        """abar_i = prod_{j<=i} (1 - b_j)."""
        return np.cumprod(self.alphas)


def make_schedule(kind: str, T: int, beta_start: float, beta_end: float) -> Schedule:
    """Betas rising from ``beta_start`` to ``beta_end`` over T steps.

    - linear:    b_i = start + (end - start) * i / (T - 1)
    - quadratic: b_i = (sqrt(start) + (sqrt(end) - sqrt(start)) * i / (T - 1))^2
    - sigmoid:   b_i = sigmoid(linspace(-6, 6, T))_i * (end - start) + start
      (the authors' schedule, with start = 1e-5 and end = 1e-2).
    With T = 1 the single beta is ``beta_end``.
    """
    check_choice(kind, SCHEDULES, "schedule")
    if not isinstance(T, int | np.integer) or isinstance(T, bool) or T < 1:
        raise ValueError(f"T: expected an integer >= 1, got {T!r}")
    if not (0 < beta_start < 1 and 0 < beta_end < 1):
        raise ValueError(
            f"beta_start and beta_end must lie in (0, 1), got {beta_start}, {beta_end}"
        )
    if beta_end < beta_start:
        raise ValueError(f"beta_end ({beta_end}) is below beta_start ({beta_start})")
    if T == 1:
        return Schedule(np.array([beta_end], dtype=np.float64))
    u = np.linspace(0.0, 1.0, T)
    if kind == "linear":
        betas = beta_start + (beta_end - beta_start) * u
    elif kind == "quadratic":
        betas = (np.sqrt(beta_start) + (np.sqrt(beta_end) - np.sqrt(beta_start)) * u) ** 2
    else:
        sig = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, T)))
        betas = sig * (beta_end - beta_start) + beta_start
    return Schedule(betas)
