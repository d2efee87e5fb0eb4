"""Exact scores of the noised empirical data and the two score-matching losses.

docs/paper.md sections 1-2.

With p_0 the empirical training set {x_n}, n = 1..N, the law after i forward steps is the
Gaussian mixture p_i = (1/N) sum_n N(sqrt(abar_i) x_n, (1 - abar_i) I), whose score is

    grad log p_i(x) = sum_n w_n (sqrt(abar_i) x_n - x) / (1 - abar_i),
    w = softmax_n(-|x - sqrt(abar_i) x_n|^2 / (2 (1 - abar_i))).

The losses (likelihood weighting lambda = g^2 = b, full squared norm over the d coordinates):

    J_DSM = 1/2 sum_i b_i / (1 - abar_i) E ||eps_theta(x_i, i) - eps||^2,
    J_SM  = 1/2 sum_i b_i E_{p_i} ||s_theta(x_i, i) - grad log p_i(x_i)||^2,
    s_theta = -eps_theta / sqrt(1 - abar_i).

Theorem 2 / Corollary 3: J_DSM - J_SM does not depend on theta (the "DSM floor").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from scorew2._checks import to_numpy
from scorew2.schedule import Schedule

__all__ = [
    "CHUNK_BYTES",
    "NoisedPoints",
    "dsm_floor",
    "dsm_terms",
    "empirical_score",
    "empirical_score_jacobian_eigs",
    "exact_scores",
    "j_dsm",
    "j_sm",
    "noised_points",
    "scores_and_floor",
    "sm_terms",
]

#: Default memory budget (bytes) of one block of the (steps, points, N) weight arrays: blocks
#: of a few MB stay in cache (benchmarks/README.md).
CHUNK_BYTES = 16_000_000


def _as_tensor(x: Any, name: str, dtype: torch.dtype, keep_grad: bool = False) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return (x if keep_grad else x.detach()).to(dtype=dtype)
    return torch.as_tensor(to_numpy(x, name), dtype=dtype)


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values")


def _alpha_bars(alpha_bars: Any, name: str = "alpha_bars") -> np.ndarray:
    if isinstance(alpha_bars, Schedule):
        return alpha_bars.alpha_bars
    ab = np.atleast_1d(to_numpy(alpha_bars, name))
    if ab.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {ab.shape}")
    if not np.isfinite(ab).all() or (ab <= 0).any() or (ab >= 1).any():
        raise ValueError(f"{name}: every value must lie in the open interval (0, 1)")
    return ab


def _data(data: Any, dtype: torch.dtype) -> torch.Tensor:
    x0 = _as_tensor(data, "data", dtype)
    if x0.ndim != 2 or x0.shape[0] == 0:
        raise ValueError(f"data: expected a non-empty (N, d) array, got shape {tuple(x0.shape)}")
    _check_finite(x0, "data")
    return x0


class _Posterior:
    """Posterior weights w_n(x) of the data points given x_i = x, for every step at once.

    The logits keep only the n-dependent part of -|x - mu_n|^2 / (2 (1 - abar)), i.e.
    (x . mu_n - |mu_n|^2 / 2) / (1 - abar) with mu_n = sqrt(abar) x_n: no |x|^2 to cancel, so
    the softmax is exact to rounding even for |x| large and 1 - abar tiny.

    Work is done in blocks of (steps, points) whose (steps, points, N) arrays take about
    ``chunk_bytes``: whole steps at a time when a step's points fit, else chunks of one step's
    points. Blocks of a few MB stay in cache.
    """

    def __init__(self, x0: torch.Tensor, ab: np.ndarray, chunk_bytes: int) -> None:
        T, N = ab.size, x0.shape[0]
        dtype = x0.dtype
        self.T = T
        self.one_m = torch.as_tensor(1.0 - ab, dtype=dtype).view(T, 1, 1)
        self.sq = torch.as_tensor(np.sqrt(ab), dtype=dtype).view(T, 1, 1)
        abar = torch.as_tensor(ab, dtype=dtype).view(T, 1, 1)
        # logits = x . (scale x_n) + bias_n, both per step
        self.x0t_scaled = (x0.T[None] * (self.sq / self.one_m)).contiguous()  # (T, d, N)
        self.bias = (-0.5 * abar / self.one_m) * (x0 * x0).sum(-1).view(1, 1, N)  # (T, 1, N)
        # (step, point) rows per block: about three (rows, N) arrays alive at once
        self.rows = max(1, int(chunk_bytes // (3 * N * x0.element_size())))

    def blocks(self, m: int) -> Iterator[tuple[slice, slice]]:
        """(steps, points) slices covering T x m, in step-major order."""
        if self.rows >= m:
            tb = self.rows // m
            for s in range(0, self.T, tb):
                yield slice(s, min(s + tb, self.T)), slice(0, m)
        else:
            for s in range(self.T):
                for p in range(0, m, self.rows):
                    yield slice(s, s + 1), slice(p, min(p + self.rows, m))

    def expect(self, x: torch.Tensor, steps: slice, values: torch.Tensor) -> torch.Tensor:
        """Posterior means E_w[values_n] at the steps ``steps``: x (t, c, d), values (N, k)
        -> (t, c, k).

        One fused pass: logits by baddbmm, exp in place after subtracting the (detached) row
        max, then a batched matmul and one division. Differentiable in x.
        """
        t, c, _ = x.shape
        logits = torch.baddbmm(self.bias[steps].expand(t, c, -1), x, self.x0t_scaled[steps])
        logits.sub_(logits.detach().amax(dim=-1, keepdim=True))
        e = logits.exp_()
        total = e.sum(dim=-1, keepdim=True)
        return torch.bmm(e, values.expand(t, *values.shape)) / total

    def score(self, mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """grad log p_i(x) = (sqrt(abar_i) E_w[x_n] - x) / (1 - abar_i), from the posterior mean
        ``mean`` = E_w[x_n] at x; both (T, m, d)."""
        return (mean * self.sq - x) / self.one_m

    def moments(self, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """E_w[values_n] at every (step, point): x (T, m, d), values (N, k) -> (T, m, k)."""
        rows: list[torch.Tensor] = []
        current: list[torch.Tensor] = []
        for steps, pts in self.blocks(x.shape[1]):
            current.append(self.expect(x[steps, pts], steps, values))
            if pts.stop == x.shape[1]:
                rows.append(torch.cat(current, dim=1))
                current = []
        return torch.cat(rows, dim=0)


def _mean_and_spread(
    xt: torch.Tensor, x0: torch.Tensor, ab: np.ndarray, chunk_bytes: int
) -> tuple[torch.Tensor, torch.Tensor, _Posterior]:
    """Posterior mean E_w[x_n] (T, m, d) and total variance tr Cov_w(x_n) (T, m) at xt.

    One pass over the weights for both. The data are centred first, so that
    E_w|x_n|^2 - |E_w x_n|^2 loses little to cancellation.
    """
    post = _Posterior(x0, ab, chunk_bytes)
    centre = x0.mean(0)
    x0c = x0 - centre
    d = x0.shape[1]
    mom = post.moments(xt, torch.cat([x0c, (x0c * x0c).sum(-1, keepdim=True)], dim=1))
    mean_c = mom[..., :d]
    spread = (mom[..., d] - mean_c.square().sum(-1)).clamp_min(0.0)
    return mean_c + centre, spread, post


def _steps_points(
    xt: Any, data: Any, T: int, dtype: torch.dtype, keep_grad: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated points xt (T, m, d) and training set (N, d) as tensors of ``dtype``."""
    x = _as_tensor(xt, "xt", dtype, keep_grad=keep_grad)
    x0 = _data(data, dtype)
    if x.ndim != 3 or x.shape[0] != T or x.shape[2] != x0.shape[1]:
        raise ValueError(f"xt: expected shape (T={T}, m, d={x0.shape[1]}), got {tuple(x.shape)}")
    _check_finite(x, "xt")
    return x, x0


def exact_scores(
    xt: Any,
    data: Any,
    alpha_bars: Any,
    *,
    dtype: torch.dtype = torch.float64,
    chunk_bytes: int = CHUNK_BYTES,
) -> torch.Tensor:
    """True scores grad log p_i(xt[i]) of the noised empirical data at every step.

    xt: (T, m, d) points (step i uses alpha_bars[i]); data: (N, d) training set (p_0);
    alpha_bars: (T,) values in (0, 1) or a Schedule. Returns a (T, m, d) tensor of ``dtype``.
    Blocked over (steps, points) so that one block's (steps, points, N) arrays stay within
    about ``chunk_bytes``. Differentiable in ``xt`` (autograd keeps every block's weights: for
    Jacobians prefer ``empirical_score_jacobian_eigs``, exact and cheap).
    """
    ab = _alpha_bars(alpha_bars)
    x, x0 = _steps_points(xt, data, ab.size, dtype, keep_grad=True)
    mean, _, post = _mean_and_spread(x, x0, ab, chunk_bytes)
    return post.score(mean, x)


def _one_alpha_bar(alpha_bar: Any) -> np.ndarray:
    """A scalar abar in (0, 1) as a (1,) array; ValueError naming ``alpha_bar`` otherwise."""
    ab = np.asarray(to_numpy(alpha_bar, "alpha_bar"), dtype=np.float64)
    if ab.ndim != 0:
        raise ValueError(f"alpha_bar: expected a scalar, got shape {ab.shape}")
    return _alpha_bars(ab.reshape(1), "alpha_bar")


def _points_of(x: Any, d: int, dtype: torch.dtype, keep_grad: bool = False) -> torch.Tensor:
    """Validated query points (m, d) as a tensor of ``dtype``."""
    xx = _as_tensor(x, "x", dtype, keep_grad=keep_grad)
    if xx.ndim != 2 or xx.shape[1] != d:
        raise ValueError(f"x: expected shape (m, d={d}), got {tuple(xx.shape)}")
    _check_finite(xx, "x")
    return xx


def empirical_score(x: Any, data: Any, alpha_bar: float, **options: Any) -> torch.Tensor:
    """grad_x log p(x) for p = (1/N) sum_n N(sqrt(abar) x_n, (1 - abar) I).

    = sum_n w_n (sqrt(abar) x_n - x) / (1 - abar), w = softmax_n(-|x - sqrt(abar) x_n|^2 /
    (2 (1 - abar))) (docs/paper.md section 1): ``exact_scores`` at one step. x: (m, d) points,
    data: (N, d); ``options``: ``dtype``, ``chunk_bytes`` as ``exact_scores``. Returns an (m, d)
    tensor. Stable for large |x| and tiny 1 - abar. Differentiable in ``x`` when x is a
    tensor that requires grad.
    """
    ab = _one_alpha_bar(alpha_bar)
    x0 = _data(data, torch.float64)
    xx = _points_of(x, x0.shape[1], options.get("dtype", torch.float64), keep_grad=True)
    return exact_scores(xx[None], data, ab, **options)[0]


def empirical_score_jacobian_eigs(
    x: Any, data: Any, alpha_bar: float, *, chunk_bytes: int = CHUNK_BYTES
) -> torch.Tensor:
    """Per point, lambda_max of the Jacobian of ``empirical_score`` (exact, no autograd).

    The Jacobian of s(x) = (sqrt(abar) E_w[x_n] - x) / (1 - abar) is symmetric:
    J = (abar / (1 - abar) Cov_w(x_n) - I) / (1 - abar), Cov_w the covariance of the data
    under the posterior weights w(x). Returns an (m,) float64 tensor; its max over a point set
    is the "jacobian" estimate of L_s of the exact score (scorew2.lipschitz).
    """
    ab = _one_alpha_bar(alpha_bar)
    x0 = _data(data, torch.float64)
    xx = _points_of(x, x0.shape[1], torch.float64)
    x0c = x0 - x0.mean(0)  # the covariance is shift-invariant; centring limits cancellation
    N, d = x0.shape
    values = torch.cat([x0c, (x0c[:, :, None] * x0c[:, None, :]).reshape(N, d * d)], dim=1)
    moments = _Posterior(x0, ab, chunk_bytes).moments(xx[None], values)[0]
    mean, second = moments[:, :d], moments[:, d:].reshape(-1, d, d)
    top = torch.linalg.eigvalsh(second - mean[:, :, None] * mean[:, None, :])[:, -1]
    a = float(ab[0])
    return (a / (1.0 - a) * top - 1.0) / (1.0 - a)


# ----------------------------------------------------------------------------- losses


def _schedule(schedule: Any) -> Schedule:
    if isinstance(schedule, Schedule):
        return schedule
    return Schedule(to_numpy(schedule, "schedule"))


def _all_steps(T: int) -> torch.Tensor:
    """Step indices 0..T-1 as a (T, 1) tensor: one step per row of a (T, m, d) array."""
    return torch.arange(T).view(T, 1)


def _steps_check(x: torch.Tensor, name: str, T: int) -> None:
    if x.ndim < 3 or x.shape[-3] != T:
        raise ValueError(f"{name}: expected shape (..., T={T}, m, d), got {tuple(x.shape)}")


def dsm_terms(eps_pred: Any, eps: Any, schedule: Any) -> torch.Tensor:
    """Per step and point, 1/2 b_i / (1 - abar_i) ||eps_pred[..., i, j] - eps[i, j]||^2.

    eps_pred: (..., T, m, d) (leading dims: several models on the same noised points); eps:
    (T, m, d) or broadcastable; schedule: Schedule (or its betas). Returns (..., T, m) float64;
    J_DSM is its mean over points summed over steps (``j_dsm``).
    """
    sch = _schedule(schedule)
    ep = _as_tensor(eps_pred, "eps_pred", torch.float64)
    e = _as_tensor(eps, "eps", torch.float64)
    _steps_check(ep, "eps_pred", sch.T)
    _steps_check(e, "eps", sch.T)
    w = torch.as_tensor(sch.dsm_weight, dtype=torch.float64)
    return 0.5 * (ep - e).square().sum(-1) * w.view(-1, 1)


def j_dsm(eps_pred: Any, eps: Any, schedule: Any) -> torch.Tensor:
    """Denoising score matching loss J_DSM (docs/paper.md section 2, lambda = g^2 = b).

    J_DSM = 1/2 sum_i b_i / (1 - abar_i) mean_m ||eps_pred[..., i, m] - eps[i, m]||^2.
    Arguments as ``dsm_terms``; returns a float64 tensor of shape (...) (0-d for one model).
    """
    return dsm_terms(eps_pred, eps, schedule).mean(-1).sum(-1)


def sm_terms(eps_pred: Any, true_score: Any, schedule: Any) -> torch.Tensor:
    """Per step and point, 1/2 b_i ||s_theta - s*||^2 with s_theta = -eps_pred / sqrt(1-abar_i).

    eps_pred: (..., T, m, d); true_score: (T, m, d) scores of p_i at the same points (see
    ``exact_scores``). Returns (..., T, m) float64; J_SM is its mean over points summed over
    steps (``j_sm``).
    """
    sch = _schedule(schedule)
    ep = _as_tensor(eps_pred, "eps_pred", torch.float64)
    s = _as_tensor(true_score, "true_score", torch.float64)
    _steps_check(ep, "eps_pred", sch.T)
    _steps_check(s, "true_score", sch.T)
    s_theta = sch.eps_to_score(ep, _all_steps(sch.T))
    b = torch.as_tensor(sch.betas, dtype=torch.float64)
    return 0.5 * (s_theta - s).square().sum(-1) * b.view(-1, 1)


def j_sm(eps_pred: Any, true_score: Any, schedule: Any) -> torch.Tensor:
    """Score matching loss J_SM with the exact score (docs/paper.md section 2, lambda = g^2 = b).

    J_SM = 1/2 sum_i b_i mean_m ||s_theta - s*||^2, s_theta = -eps_pred / sqrt(1 - abar_i).
    Arguments as ``sm_terms``; returns a float64 tensor of shape (...).
    """
    return sm_terms(eps_pred, true_score, schedule).mean(-1).sum(-1)


class NoisedPoints(NamedTuple):
    """Evaluation points drawn once and shared by every model and checkpoint.

    x0_index: (m,) int64 index into the data (every point ``n_draws`` times, m = N n_draws);
    eps: (T, m, d) the noise; xt: (T, m, d) = sqrt(abar_i) data[x0_index] + sqrt(1-abar_i) eps.
    The noise is independent across steps and draws.
    """

    x0_index: torch.Tensor
    eps: torch.Tensor
    xt: torch.Tensor


def noised_points(
    data: Any, schedule: Any, n_draws: int, generator: torch.Generator
) -> NoisedPoints:
    """Noise every data point ``n_draws`` times at every step (float64, noise from
    ``generator``).

    With every x_n present equally often, the expectation over the empirical p_0 is exact; only
    the Gaussian noise is Monte Carlo.
    """
    sch = _schedule(schedule)
    x0 = _data(data, torch.float64)
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise ValueError(f"n_draws: expected an integer >= 1, got {n_draws!r}")
    N, d = x0.shape
    idx = torch.arange(N).repeat(int(n_draws))
    eps = torch.randn((sch.T, idx.numel(), d), generator=generator, dtype=torch.float64)
    xt = sch.noise(x0[idx][None], eps, _all_steps(sch.T))
    return NoisedPoints(idx, eps, xt)


def dsm_floor(xt: Any, data: Any, schedule: Any, *, chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """The theta-free gap J_DSM - J_SM (Theorem 2), estimated at the points ``xt`` (T, m, d).

    Given x_i, the posterior of x0 under the empirical p_0 is the softmax weights w_n of the
    score, and the conditional score c_n = (sqrt(abar) x_n - x) / (1 - abar) has posterior mean
    s*(x). Averaging the DSM integrand over that posterior (Rao-Blackwell) gives
    |s_theta - s*|^2 + E_w|c|^2 - |s*|^2, so

        J_DSM - J_SM = 1/2 sum_i b_i mean_m abar_i / (1 - abar_i)^2 tr Cov_w(x_n),

    in which the theta-dependent cross term cancels exactly (not only in expectation). With
    ``xt`` from ``noised_points`` this is an unbiased estimate of the floor. Returns a 0-d
    float64 tensor.
    """
    sch = _schedule(schedule)
    x, x0 = _steps_points(xt, data, sch.T, torch.float64)
    _, spread, _ = _mean_and_spread(x, x0, sch.alpha_bars, chunk_bytes)
    return _floor(spread, sch)


def scores_and_floor(
    xt: Any, data: Any, schedule: Any, *, chunk_bytes: int = CHUNK_BYTES
) -> tuple[torch.Tensor, torch.Tensor]:
    """``exact_scores`` (T, m, d) and ``dsm_floor`` (0-d) at ``xt`` from ONE pass over the
    posterior weights (the loss step needs both; the weights are its costliest part)."""
    sch = _schedule(schedule)
    x, x0 = _steps_points(xt, data, sch.T, torch.float64)
    mean, spread, post = _mean_and_spread(x, x0, sch.alpha_bars, chunk_bytes)
    return post.score(mean, x), _floor(spread, sch)


def _floor(spread: torch.Tensor, sch: Schedule) -> torch.Tensor:
    """1/2 sum_i b_i abar_i / (1 - abar_i)^2 mean_m spread[i, m] (see ``dsm_floor``)."""
    ab = sch.alpha_bars
    factor = torch.as_tensor(sch.betas * ab / (1.0 - ab) ** 2, dtype=torch.float64)
    return 0.5 * (factor * spread.mean(-1)).sum()
