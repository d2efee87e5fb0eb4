"""Estimates of the one-sided Lipschitz constant of a score field (docs/paper.md section 3).

L_s = sup_{x != y} (s(x) - s(y)) . (x - y) / |x - y|^2 over a region. For a C^1 field on a
convex region this equals sup_x lambda_max((J(x) + J(x)^T) / 2), J the Jacobian of s. Two
estimators, both over a FINITE set of points, hence both LOWER estimates of the true sup over
any region containing those points; a bound computed from them is not certified.

- "pairs": the max of the ratio over all pairs of the given points. Each ratio is the Rayleigh
  quotient of the symmetric Jacobian averaged along the segment [x_j, x_i], so this value is a
  lower estimate of the sup over the convex hull of the points (the segments it samples).
- "jacobian": the max of lambda_max((J + J^T) / 2) AT the given points only; it is a lower
  estimate of the sup over those points' neighbourhood and may lie BELOW the pairs value when
  the Jacobian peaks between points (seen: 4.510 against 4.545). Evaluate it on
  ``region_grid(points, ...)`` to cover the region the pair segments span.

The authors' estimator is "pairs" on ``paper_grid()`` (10 x 10 grid on [0, 0.9]^2), which covers
one quadrant only.

``certified_lipschitz`` is not an estimate: by branch and bound over boxes with enclosures of
the network's Jacobian (scorew2.interval: affine forms for softplus networks, intervals for
ReLU ones) it returns lower <= sup over a box of
lambda_max(sym grad s_theta) <= upper, with upper - lower <= tol * max(1, |upper|).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scorew2._checks import as_points, check_choice, to_numpy
from scorew2.interval import (
    activation_slopes,
    affine_jacobian,
    box_bounds,
    jacobian_at,
    preactivations,
    relu_patterns,
)

if TYPE_CHECKING:
    from scorew2.model import ScoreNet

__all__ = [
    "ENCLOSURES",
    "METHODS",
    "Certificate",
    "certified_lipschitz",
    "jacobian_sym_eigs",
    "one_sided_lipschitz",
    "pairs_max_ratio",
    "paper_grid",
    "region_grid",
]

METHODS = ("pairs", "jacobian")
ENCLOSURES = ("auto", "interval")

Field = Callable[[torch.Tensor], torch.Tensor]


def _points(points: Any, name: str = "points", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    if isinstance(points, torch.Tensor):
        x = points.detach().to(dtype)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name}: expected shape (n, d), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return x
    return torch.as_tensor(as_points(points, name), dtype=dtype)


def _eval_field(field: Field, x: torch.Tensor, name: str = "field") -> torch.Tensor:
    y = field(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(
            f"{name}: must map a {tuple(x.shape)} tensor to the same shape, got {shape}"
        )
    return y


def pairs_max_ratio(values: Any, points: Any, *, chunk_elems: int = 4_000_000) -> float:
    """max over pairs i != j of (v_i - v_j) . (x_i - x_j) / |x_i - x_j|^2 for given field values.

    values, points: (n, d). Coincident pairs (|x_i - x_j| = 0) are skipped. Chunked over rows;
    each chunk of rows [a, b) is compared with the columns [a, n) (each unordered pair at least
    once). Differences are formed directly (no |x|^2 expansion), so close pairs stay accurate.
    Returns NaN if a value is not finite; raises ValueError if no pair of distinct points
    exists.
    """
    x = _points(points)
    v = (
        torch.as_tensor(to_numpy(values, "values"))
        if not isinstance(values, torch.Tensor)
        else values
    )
    v = v.detach().to(torch.float64)
    if v.shape != x.shape:
        raise ValueError(f"values: expected shape {tuple(x.shape)}, got {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        return float("nan")  # as the jacobian method: a NaN field gives a NaN estimate
    n = x.shape[0]
    best = -torch.inf
    rows = max(1, chunk_elems // max(n, 1))
    for a in range(0, n, rows):
        b = min(n, a + rows)
        dx = x[a:b, None, :] - x[None, a:, :]
        dv = v[a:b, None, :] - v[None, a:, :]
        den = dx.square().sum(-1)
        num = (dv * dx).sum(-1)
        ok = den > 0
        if ok.any():
            best = max(best, float((num[ok] / den[ok]).max()))
    if best == -torch.inf:
        raise ValueError("points: need at least two distinct points for the pairs estimate")
    return best


def _sym_top_eig(J: torch.Tensor) -> torch.Tensor:
    """lambda_max((J + J^T) / 2) for J (..., d, d): closed form for d = 2, eigvalsh otherwise."""
    S = 0.5 * (J + J.transpose(-1, -2))
    if S.shape[-1] == 1:
        return S[..., 0, 0]
    if S.shape[-1] == 2:
        a, b, c = S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]
        return 0.5 * (a + c) + torch.hypot(0.5 * (a - c), b)
    return torch.linalg.eigvalsh(S)[..., -1]


def jacobian_sym_eigs(
    field: Field,
    points: Any,
    *,
    n_fields: int | None = None,
    dtype: torch.dtype = torch.float64,
    chunk_size: int = 8192,
) -> torch.Tensor:
    """Per point, lambda_max((J + J^T) / 2) of K independent fields: returns (K, n).

    Its max over the points (``.amax(dim=1)``) is each field's "jacobian" estimate of L_s: a
    lower estimate of the sup over any region containing the points (exact for an affine
    field).

    field maps (K, n, d) -> (K, n, d) pointwise (row k, i depends only on input k, i), so the
    Jacobian rows come from d backward passes of summed outputs. points: (n, d) shared by all K
    fields (then ``n_fields`` = K is required) or (K, n, d). The points are given to the field
    in ``dtype`` (a float32 network can be wrapped as ``lambda x: net(x.float()).double()``).
    Chunked over n (``chunk_size`` points per pass).
    """
    if isinstance(points, torch.Tensor):
        p = points.detach().to(dtype)
    else:
        p = torch.as_tensor(to_numpy(points, "points"), dtype=dtype)
    if p.ndim == 2:
        if n_fields is None or isinstance(n_fields, bool) or int(n_fields) < 1:
            raise ValueError("n_fields: required (an integer >= 1) when points are (n, d)")
        p = p.unsqueeze(0).expand(int(n_fields), -1, -1)
    elif p.ndim != 3:
        raise ValueError(f"points: expected shape (n, d) or (K, n, d), got {tuple(p.shape)}")
    elif n_fields is not None and int(n_fields) != p.shape[0]:
        raise ValueError(f"n_fields: {n_fields} does not match points' K = {p.shape[0]}")
    _, n, d = p.shape
    if n == 0 or d == 0:
        raise ValueError(f"points: empty point set, shape {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError("points: contains NaN or infinite values")
    out = []
    for a in range(0, n, chunk_size):
        x = p[:, a : a + chunk_size].clone().requires_grad_(True)
        with torch.enable_grad():
            y = _eval_field(field, x)
            rows = [
                torch.autograd.grad(y[..., k].sum(), x, retain_graph=k < d - 1)[0] for k in range(d)
            ]
        J = torch.stack(rows, dim=-2)  # J[..., k, l] = d y_k / d x_l
        out.append(_sym_top_eig(J.detach().to(torch.float64)))
    return torch.cat(out, dim=1)


def one_sided_lipschitz(
    field: Field, points: Any, method: str = "pairs", *, dtype: torch.dtype = torch.float64
) -> float:
    """Estimate L_s = sup (s(x) - s(y)) . (x - y) / |x - y|^2 of ``field`` from ``points``.

    field maps an (n, d) tensor to (n, d); points: (n, d).
    - "pairs": max over all pairs i != j of the points (coincident points skipped): a lower
      estimate of the sup over the convex hull of the points.
    - "jacobian": max over the points of lambda_max((J + J^T) / 2): a lower estimate of the sup
      near the points; use ``region_grid`` points to cover a region.
    Both are LOWER estimates of the true sup; a bound built on them is not certified.
    """
    check_choice(method, METHODS, "method")
    x = _points(points, dtype=dtype)
    if method == "pairs":
        with torch.no_grad():
            v = _eval_field(field, x)
        return pairs_max_ratio(v, x)

    def batched(y: torch.Tensor) -> torch.Tensor:
        return field(y[0]).unsqueeze(0)

    return float(jacobian_sym_eigs(batched, x.unsqueeze(0), dtype=dtype).max())


def region_grid(points: Any, n_per_axis: int = 64, margin: float = 0.0) -> torch.Tensor:
    """Dense grid over the bounding box of ``points`` widened by ``margin`` on each side.

    Returns an (n_per_axis^d, d) float64 tensor: per axis ``n_per_axis`` evenly spaced values
    on [min - margin, max + margin] (``margin`` in data units). The grid covers the convex hull
    of the points, i.e. every segment the pairs estimate samples.
    """
    x = as_points(points, "points")
    if isinstance(n_per_axis, bool) or not isinstance(n_per_axis, int | np.integer):
        raise ValueError(f"n_per_axis: expected an integer >= 2, got {n_per_axis!r}")
    if n_per_axis < 2:
        raise ValueError(f"n_per_axis: expected an integer >= 2, got {n_per_axis}")
    margin = float(margin)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin: expected a finite number >= 0, got {margin}")
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    axes = [
        torch.linspace(a, b, int(n_per_axis), dtype=torch.float64)
        for a, b in zip(lo, hi, strict=True)
    ]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=1)


def paper_grid() -> torch.Tensor:
    """The authors' L_s region: a 10 x 10 grid on [0, 0.9]^2 (100 points, float64).

    Their L_s(i) is the "pairs" max over this grid (their notebook; one quadrant).
    Point order as in their meshgrid ("ij"): the first coordinate varies slowest.
    """
    xs = torch.linspace(0.0, 0.9, 10, dtype=torch.float64)
    g0, g1 = torch.meshgrid(xs, xs, indexing="ij")
    return torch.stack([g0.reshape(-1), g1.reshape(-1)], dim=1)


# ---------------------------------------------------------------------- the certificate
def _sym_top_eig_upper(J_lo: torch.Tensor, J_hi: torch.Tensor) -> torch.Tensor:
    """An upper bound of lambda_max((J + J^T) / 2) over every J with J_lo <= J <= J_hi.

    S = (J + J^T) / 2 lies entrywise in [(J_lo + J_lo^T) / 2, (J_hi + J_hi^T) / 2]. For d = 2,
    lambda_max = (a + c) / 2 + hypot((a - c) / 2, b) is non-decreasing in a = S_11, c = S_22
    and |b| = |S_12|, so the bound is lambda_max at (a_hi, c_hi, max |b|), attained when S can
    take those values. For d != 2, Gershgorin: max_i (S_ii,hi + sum_{j != i} max |S_ij|).
    """
    s_lo = 0.5 * (J_lo + J_lo.transpose(-1, -2))
    s_hi = 0.5 * (J_hi + J_hi.transpose(-1, -2))
    off = torch.maximum(s_lo.abs(), s_hi.abs())
    if s_hi.shape[-1] == 2:
        a, c = s_hi[..., 0, 0], s_hi[..., 1, 1]
        return 0.5 * (a + c) + torch.hypot(0.5 * (a - c), off[..., 0, 1])
    diag = torch.diagonal(s_hi, dim1=-2, dim2=-1)
    return (diag + off.sum(-1) - torch.diagonal(off, dim1=-2, dim2=-1)).amax(-1)


#: Up to this dimension softplus networks get the affine bound (2^d box vertices each).
AFFINE_MAX_DIM = 4


def _affine_values(
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    lo: torch.Tensor,
    hi: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per box: a second-order upper bound of lambda_max(sym J_s) over it (softplus networks),
    and the value at its centre.

    With the affine enclosure J_eps(c + delta) = J0 + sum_b Jl_b delta_b + E, |E| <= JE
    (``affine_jacobian``; J0 = J_eps(c)), sym J_s = A(delta) - scale sym E with A(delta) =
    -scale sym(J0 + sum_b Jl_b delta_b). By Weyl, lambda_max <= lambda_max(A(delta)) +
    lambda_max(scale sym E); lambda_max(A(delta)) is convex in delta, so its max over the box
    is at one of the 2^d vertices; the second term is at most the monotone bound over
    [-scale JE, scale JE]. The excess over the true sup is O(r^2) (r the half-widths).
    """
    J0, Jl, JE = affine_jacobian(layers, lo, hi)
    d = lo.shape[-1]
    corners = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=lo.dtype)] * d)
    delta = corners.view(-1, 1, 1, d) * (0.5 * (hi - lo))  # (2^d, M, N, d)
    J_v = J0 + (Jl * delta[:, :, :, None, None, :]).sum(-1)
    err = scale * JE
    upper = _sym_top_eig(-scale * J_v).amax(0) + _sym_top_eig_upper(-err, err)
    return upper, _sym_top_eig(-scale * J0)


@dataclass(frozen=True)
class Certificate:
    """Bounds on L = sup over a box of lambda_max(sym grad_x s_theta_m(x, step)), per model.

    Attributes
    ----------
    lower, upper : np.ndarray of shape (M,)
        lower <= L <= upper; lower is the value at ``argmax``, a point of the box.
    argmax : np.ndarray of shape (M, d)
    converged : np.ndarray of bool, shape (M,)
        upper - lower <= tol * max(1, |upper|) (False only when ``max_boxes`` stopped it;
        the bounds still hold).
    n_boxes : np.ndarray of int, shape (M,)
        Boxes evaluated per model.
    """

    lower: np.ndarray
    upper: np.ndarray
    argmax: np.ndarray
    converged: np.ndarray
    n_boxes: np.ndarray


def _box_values(
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    relu: torch.Tensor,
    scale: float,
    lo: torch.Tensor,
    hi: torch.Tensor,
    n_free: int,
    affine: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per box (M, N): an upper bound of lambda_max(sym J_s) over it, and the value at its
    centre c; J_s = -scale J_eps (the score s = -eps / sqrt(1 - abar)).

    Softplus networks (d <= ``AFFINE_MAX_DIM``, ``affine``): the affine bound
    ``_affine_values``. Others: the interval enclosure of J_eps (``box_bounds``) and the
    monotone bound ``_sym_top_eig_upper``; for ReLU models, boxes with at most ``n_free``
    undecided units also get the max over their activation patterns (J_s(x) is one of those
    patterns' Jacobians for every x of the box).
    """
    if affine and not bool(relu.any()) and lo.shape[-1] <= AFFINE_MAX_DIM:
        return _affine_values(layers, lo, hi, scale)
    zc = preactivations(layers, relu, 0.5 * (lo + hi))
    J_c = jacobian_at(layers, [activation_slopes(a, a, relu)[0] for a in zc])
    z, (J_m, J_r) = box_bounds(layers, relu, lo, hi, zc)
    upper = _sym_top_eig_upper(-scale * (J_m + J_r), -scale * (J_m - J_r))
    if bool(relu.any()):
        slopes = [activation_slopes(z_lo, z_hi, relu) for z_lo, z_hi in z]
        d_lo, d_hi = (torch.cat([s[k] for s in slopes], dim=-1) for k in (0, 1))
        patterns, ok = relu_patterns(d_lo, d_hi, n_free)
        best = torch.full_like(upper, -torch.inf)
        for pat in patterns:  # 2^n_free patterns, every box at once
            J_p = jacobian_at(layers, pat.chunk(len(slopes), dim=-1))
            best = torch.maximum(best, _sym_top_eig(-scale * J_p))
        upper = torch.where(ok, torch.minimum(upper, best), upper)
    return upper, _sym_top_eig(-scale * J_c)


def _region(lo: Any, hi: Any, n_models: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The box corners as (M, d) float64 tensors, from (d,) or (M, d); lo <= hi, finite."""
    out = []
    for name, v in (("lo", lo), ("hi", hi)):
        a = to_numpy(v, name)
        if a.shape not in ((dim,), (n_models, dim)) or not np.isfinite(a).all():
            raise ValueError(
                f"{name}: expected finite values of shape ({dim},) or "
                f"({n_models}, {dim}), got {a.shape}"
            )
        out.append(torch.as_tensor(np.broadcast_to(a, (n_models, dim)).copy()))
    if (out[0] > out[1]).any():
        raise ValueError("lo, hi: need lo <= hi in every coordinate")
    return out[0], out[1]


def _pack(
    model: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, n_models: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Boxes of many models, each row (model[b], lo[b], hi[b]) sorted by model, into padded
    (M, N, d) corners (padding: the model's first box). Returns them and the (model, slot)
    index of each row."""
    counts = torch.bincount(model, minlength=n_models)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(model)) - starts[model]
    first = starts.clamp(max=len(model) - 1)
    P_lo = lo[first].unsqueeze(1).repeat(1, int(counts.max()), 1)
    P_hi = hi[first].unsqueeze(1).repeat(1, int(counts.max()), 1)
    P_lo[model, slot], P_hi[model, slot] = lo, hi
    return P_lo, P_hi, (model, slot)


def _bisect(
    model: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split every box in two across its widest axis; children stay sorted by model."""
    axis = (hi - lo).argmax(1, keepdim=True)
    cut = 0.5 * (lo.gather(1, axis) + hi.gather(1, axis))
    lo2, hi1 = lo.clone(), hi.clone()
    lo2.scatter_(1, axis, cut)
    hi1.scatter_(1, axis, cut)
    return (
        model.repeat_interleave(2),
        torch.stack([lo, lo2], 1).flatten(0, 1),
        torch.stack([hi1, hi], 1).flatten(0, 1),
    )


def _evaluate(
    layers: list[tuple[torch.Tensor, torch.Tensor]],
    relu: torch.Tensor,
    scale: float,
    boxes: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    n_free: int,
    chunk: int,
    affine: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``_box_values`` of boxes (model, lo, hi) sorted by model: (upper, centre value) per box,
    over padded (M, N) chunks of ``chunk`` boxes per model."""
    model, lo, hi = boxes
    P_lo, P_hi, where = _pack(model, lo, hi, len(relu))
    parts = [
        _box_values(
            layers, relu, scale, P_lo[:, a : a + chunk], P_hi[:, a : a + chunk], n_free, affine
        )
        for a in range(0, P_lo.shape[1], chunk)
    ]
    upper, centre = (torch.cat([p[k] for p in parts], dim=1)[where] for k in (0, 1))
    return upper, centre


def certified_lipschitz(
    net: ScoreNet,
    step: int,
    alpha_bars: Any,
    lo: Any,
    hi: Any,
    tol: float = 1e-3,
    *,
    max_boxes: int = 1 << 20,
    n_free: int = 4,
    chunk: int = 256,
    enclosure: str = "auto",
) -> Certificate:
    """Certified bounds on sup_{x in [lo, hi]} lambda_max(sym grad_x s_theta_m(x, step)), per model.

    s_theta = -eps_theta / sqrt(1 - abar_step) (docs/paper.md section 1); on the convex box
    this sup is the one-sided Lipschitz constant L_s of s_theta(., step) over the box. Branch
    and bound: each box gets an upper bound (``_box_values``: the affine enclosure of the
    Jacobian for softplus networks; intervals for ReLU ones, with the max over the activation
    patterns of boxes with at most ``n_free`` undecided units) and a lower bound, the exact
    value at its centre. Boxes whose upper bound is within half the tolerance of the best
    lower bound are settled, the others are bisected across their widest axis, every model
    and box at once, until upper - lower <= tol * max(1, |upper|) for every model or
    ``max_boxes`` live boxes would be exceeded (then ``converged`` is False and the bounds
    still hold). ``chunk``: boxes per model per evaluation; the bounds do not depend on it
    beyond rounding (a few units in the last place on some processors), and 256 keeps the
    enclosure's largest tensors (0.5 MB per model) in cache: faster than 4096
    (benchmarks/bench_certify.py times both). ``enclosure``: "auto" (the affine
    one where it applies) or "interval" (intervals for every network: the baseline of
    benchmarks/bench_certify.py).

    net: a ScoreNet of any regulariser (eval weights: spectral_norm uses its stored u, v);
    lo, hi: the box, (d,) or (M, d) per model. Float64 rounding is not enclosed.
    """
    if not (isinstance(tol, int | float) and np.isfinite(tol) and 0 < tol < 1):
        raise ValueError(f"tol: expected a number in (0, 1), got {tol!r}")
    check_choice(enclosure, ENCLOSURES, "enclosure")
    abar = to_numpy(alpha_bars, "alpha_bars")
    if abar.shape != (net.n_steps,):
        raise ValueError(f"alpha_bars: expected shape ({net.n_steps},), got {abar.shape}")
    layers, relu = net.step_mlp(step)
    scale = float(1.0 / np.sqrt(1.0 - abar[int(step)]))
    M = net.n_models
    b_lo, b_hi = _region(lo, hi, M, net.dim)
    boxes = (torch.arange(M), b_lo, b_hi)
    lower = torch.full((M,), -torch.inf, dtype=torch.float64)
    argmax, kept = b_lo.clone(), lower.clone()
    n_boxes, converged = torch.zeros(M, dtype=torch.int64), torch.ones(M, dtype=torch.bool)
    while len(boxes[0]):
        model = boxes[0]
        upper, centre = _evaluate(layers, relu, scale, boxes, n_free, chunk, enclosure == "auto")
        n_boxes += torch.bincount(model, minlength=M)
        best = torch.full((M,), -torch.inf, dtype=torch.float64).scatter_reduce(
            0, model, centre, "amax"
        )
        gain = best > lower
        win = (centre == best[model]) & gain[model]
        argmax[model[win]] = 0.5 * (boxes[1][win] + boxes[2][win])
        lower = torch.maximum(lower, best)
        slack = 0.5 * tol * lower.abs().clamp(min=1.0)
        settle = upper <= (lower + slack)[model]
        kept.scatter_reduce_(0, model[settle], upper[settle], "amax")
        split = ~settle
        if 2 * int(split.sum()) > max_boxes:  # stop: the open boxes' upper bounds stand
            kept.scatter_reduce_(0, model[split], upper[split], "amax")
            converged[model[split]] = False
            break
        boxes = _bisect(*(b[split] for b in boxes))
    upper = torch.maximum(kept, lower)
    return Certificate(
        lower=lower.numpy(),
        upper=upper.numpy(),
        argmax=argmax.numpy(),
        converged=converged.numpy(),
        n_boxes=n_boxes.numpy(),
    )
