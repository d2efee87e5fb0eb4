"""Forward noising and the ancestral sampler (docs/paper.md section 1).

Forward: x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) z, z ~ N(0, I).
Ancestral sampler with sigma_i^2 = b_i, for i = T-1 .. 0:

    x <- (x - b_i / sqrt(1 - abar_i) * eps_theta(x, i)) / sqrt(a_i) + sqrt(b_i) z.

The noise is added at every step, the last one (i = 0) included: that is the paper's formula
and also what the authors' notebook does (``p_sample`` always adds sigma_t z, and
``p_sample_loop_from_qnoise`` runs it for every i down to 0).  ``final_noise=False`` gives the
variant without it.

Priors q_T (``scorew2.runs.PRIORS``, the config's names): "data" (the data noised to step T-1;
the sampler starts from those very points, so q_T = p_T, docs/paper.md 4) and "gaussian"
(N(0, I), Corollary 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from scorew2._checks import as_points, check_choice, to_numpy
from scorew2.runs import PRIORS
from scorew2.schedule import Schedule

__all__ = ["Samples", "ancestral_sample", "make_prior"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Samples(NamedTuple):
    """Sampler output.  x: (M, n, d); finite: (M, n) bool, False where a sample has a NaN or
    infinite coordinate.  Never pass ``x`` to W2 without looking at ``finite``."""

    x: torch.Tensor
    finite: torch.Tensor
    path: torch.Tensor | None = None  # (T, M, n, d): path[i] = the state the model saw at step i

    @property
    def n_nonfinite(self) -> torch.Tensor:
        """(M,) number of non-finite samples per model."""
        return (~self.finite).sum(dim=1)

    def all_finite(self) -> bool:
        return bool(self.finite.all())


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise ValueError(f"{name}: expected a floating-point tensor, got {x.dtype}")
        return x
    return torch.as_tensor(to_numpy(x, name))


def make_prior(
    kind: str,
    schedule: Schedule,
    generator: torch.Generator,
    *,
    n_models: int = 1,
    data: Any = None,
    n: int | None = None,
    dim: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Starting points x_T (n_models, n, d) for the sampler, the same for every model.

    kind "data": ``data`` (n, d) noised to the last step T-1 (n = len(data)): q_T = p_T.
    kind "gaussian": N(0, I) draws; n and dim required (or taken from ``data``).
    """
    check_choice(kind, PRIORS, "prior")
    if n_models < 1:
        raise ValueError(f"n_models: expected >= 1, got {n_models}")
    if kind == "data":
        if data is None:
            raise ValueError("data: required for the prior 'data'")
        pts = torch.as_tensor(as_points(data, "data"))
        z = torch.randn(tuple(pts.shape), generator=generator, dtype=pts.dtype)
        x = schedule.noise(pts, z, schedule.T - 1)
    else:
        if data is not None:
            pts = as_points(data, "data")
            n = pts.shape[0] if n is None else n
            dim = pts.shape[1] if dim is None else dim
        if n is None or dim is None or n < 1 or dim < 1:
            raise ValueError(f"n and dim: required positive for the prior 'gaussian' ({n}, {dim})")
        x = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return x.to(dtype).unsqueeze(0).expand(n_models, -1, -1).contiguous()


@torch.no_grad()
def ancestral_sample(
    model: nn.Module | EpsFn,
    schedule: Schedule,
    x_T: Any,
    generator: torch.Generator,
    *,
    final_noise: bool = True,
    shared_noise: bool = True,
    chunk_size: int | None = None,
    keep_path: bool = False,
) -> Samples:
    """Run the ancestral sampler from x_T (M, n, d) down to x_0; see the module doc.

    Parameters
    ----------
    model : ScoreNet or callable
        A ScoreNet of M models (put in eval mode for the call, mode restored after), or any
        function eps(x (M, n, d), t (M, n) int64) -> (M, n, d), e.g. an exact score through
        eps = -sqrt(1 - abar_t) s*(x).
    schedule : Schedule
        The T-step schedule the model was trained with.
    x_T : array or tensor of shape (M, n, d)
        Starting points; the update runs in x_T's float dtype.
    generator : torch.Generator
        CPU generator of the noise z.
    final_noise : bool
        Add sqrt(b_0) z at the last step (paper and notebook: True).
    shared_noise : bool
        The same z (n, d) for every model at each step (common random numbers: model m's
        samples do not depend on the other models); False draws (M, n, d).
    chunk_size : int, optional
        Evaluate the model on at most this many points per model at a time.
    keep_path : bool
        Also return every state x_i at which the model was evaluated (``path``).

    Returns
    -------
    Samples
        (x, finite, path): non-finite samples are reported in ``finite``, never raised.
    """
    x = _as_tensor(x_T, "x_T")
    if x.ndim != 3:
        raise ValueError(f"x_T: expected shape (M, n, d), got {tuple(x.shape)}")
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule: expected a Schedule, got {type(schedule).__name__}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size: expected >= 1, got {chunk_size}")
    m, n, _ = x.shape
    n_steps = getattr(model, "n_steps", schedule.T)
    if n_steps != schedule.T:
        raise ValueError(f"schedule: T = {schedule.T} but the model has n_steps = {n_steps}")
    betas = schedule.betas
    alphas = schedule.alphas
    abars = schedule.alpha_bars
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        x = x.clone()
        step = n if chunk_size is None else chunk_size
        path = torch.empty((schedule.T, *x.shape), dtype=x.dtype) if keep_path else None
        for i in range(schedule.T - 1, -1, -1):
            if path is not None:
                path[i] = x
            t = torch.full((m, n), i, dtype=torch.long, device=x.device)
            eps = torch.cat(
                [model(x[:, s : s + step], t[:, s : s + step]) for s in range(0, n, step)], dim=1
            ).to(x.dtype)
            x = (x - (betas[i] / np.sqrt(1.0 - abars[i])) * eps) / np.sqrt(alphas[i])
            if i > 0 or final_noise:
                shape = (n, x.shape[2]) if shared_noise else tuple(x.shape)
                z = torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device)
                x = x + np.sqrt(betas[i]) * z
    finally:
        if was_training:
            model.train()
    finite = torch.isfinite(x).all(dim=2)
    return Samples(x, finite, path)
