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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from scorew2._checks import as_points, check_choice, to_numpy

__all__ = [
    "METHODS",
    "jacobian_sym_eigs",
    "one_sided_lipschitz",
    "pairs_max_ratio",
    "paper_grid",
    "region_grid",
]

METHODS = ("pairs", "jacobian")

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
