"""Noise schedules of the discrete DDPM (the VP-SDE with dt = 1), docs/paper.md section 1.

For steps i = 0..T-1 with betas b_i: a_i = 1 - b_i, abar_i = prod_{j<=i} a_j, and

    forward process     x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) eps,   eps ~ N(0, I)
    score of a network  s_theta(x, i) = -eps_theta(x, i) / sqrt(1 - abar_i)
    DSM weight          b_i / (1 - abar_i)   (likelihood weighting lambda = g^2 = b)

``Schedule`` is the one home of these three formulas: the trainer, the sampler, the losses and
the Lipschitz estimates all call ``noise``, ``eps_to_score`` and ``dsm_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scorew2._checks import check_choice

__all__ = ["SCHEDULES", "Schedule", "make_schedule"]

SCHEDULES = ("linear", "quadratic", "sigmoid")


def _per_step(table: Any, t: Any, like: Any) -> Any:
    """``table[t]`` shaped to broadcast against ``like`` (..., d): a trailing axis of size 1.

    ``table``: a (T,) float64 array or tensor. ``t`` is an int (one step for every point) or an
    integer torch tensor of step indices whose shape is ``like.shape[:-1]`` or broadcasts
    against it. The result is a torch tensor of ``like``'s dtype and device.
    """
    import torch

    values = torch.as_tensor(table, dtype=torch.float64)
    if isinstance(t, torch.Tensor):
        values = values[t.cpu().long()].unsqueeze(-1)
    else:
        values = values[int(t)]
    return values.to(dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class Schedule:
    """Betas b_i of a T-step schedule and the quantities derived from them (float64).

    Parameters
    ----------
    betas : array of shape (T,)
        Every beta in the open interval (0, 1).
    """

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

    @property
    def dsm_weight(self) -> np.ndarray:
        """b_i / (1 - abar_i): the weight of ||eps_theta - eps||^2 in J_DSM (docs/paper.md 2)."""
        return self.betas / (1.0 - self.alpha_bars)

    @property
    def inv_noise_std(self) -> np.ndarray:
        """1 / sqrt(1 - abar_i): the factor from eps_theta to the score."""
        return 1.0 / np.sqrt(1.0 - self.alpha_bars)

    def noise(self, x0: Any, eps: Any, t: Any) -> Any:
        """The forward process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (torch tensors).

        Parameters
        ----------
        x0, eps : torch.Tensor of shape (..., d)
            Data points and standard normal noise (broadcastable to one shape).
        t : int or integer torch.Tensor
            The step of every point: one int, or indices shaped like ``x0.shape[:-1]`` (or
            broadcasting against it).

        Returns
        -------
        torch.Tensor
            x_t, of the dtype of ``x0``.
        """
        import torch

        # torch's float64 sqrt of the whole abar vector: what every result so far was made with
        # (it differs from numpy's in the last bit for a few steps of the longer schedules)
        ab = torch.as_tensor(self.alpha_bars, dtype=torch.float64)
        return _per_step(ab.sqrt(), t, x0) * x0 + _per_step((1.0 - ab).sqrt(), t, x0) * eps

    def eps_to_score(self, eps: Any, t: Any) -> Any:
        """The score of a noise prediction: s_theta = -eps_theta / sqrt(1 - abar_t).

        Computed as ``-eps * (1 / sqrt(1 - abar_t))``; ``eps`` a torch tensor (..., d), ``t`` as
        in ``noise``. Returns a tensor like ``eps``.
        """
        return -eps * _per_step(self.inv_noise_std, t, eps)


def make_schedule(kind: str, T: int, beta_start: float, beta_end: float) -> Schedule:
    """Betas rising from ``beta_start`` to ``beta_end`` over T steps.

    - linear:    b_i = start + (end - start) * i / (T - 1)
    - quadratic: b_i = (sqrt(start) + (sqrt(end) - sqrt(start)) * i / (T - 1))^2
    - sigmoid:   b_i = sigmoid(linspace(-6, 6, T))_i * (end - start) + start
      (the authors' schedule, with start = 1e-5 and end = 1e-2).

    With T = 1 the single beta is ``beta_end``.

    Parameters
    ----------
    kind : {"linear", "quadratic", "sigmoid"}
    T : int
        Number of steps, >= 1.
    beta_start, beta_end : float
        In (0, 1), with beta_end >= beta_start.

    Returns
    -------
    Schedule
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
