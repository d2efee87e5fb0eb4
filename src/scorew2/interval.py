"""Enclosures of an MLP's Jacobian over boxes (the certified L_s, docs/paper.md 3).

The network at a step is the plain MLP of ``ScoreNet.step_mlp``:

    z_l = W_l h_{l-1} + c_l,  h_l = act(z_l)  (l = 1..3, h_0 = x),  eps(x) = W_4 h_3 + c_4,
    J_eps(x) = W_4 D_3 W_3 D_2 W_2 D_1 W_1,   D_l = diag(act'(z_l(x))),

act = softplus (act' = sigmoid, increasing) or ReLU (act' = 1[z > 0], a step). Over a box
[lo, hi] every z_l lies in an interval, so every D_l lies in [act'(z_lo), act'(z_hi)] (act' is
non-decreasing), and interval arithmetic through the products bounds J_eps entrywise at
every x of the box (``box_bounds``). Intervals are (mid, rad) pairs: a point matrix times an
interval is exact entrywise (mid W m, rad |W| r); a product of two intervals has mid a_m b_m
and rad |a_m| b_r + a_r |b_m| + a_r b_r. Intervals lose the cancellations between units, so
for softplus networks ``affine_jacobian`` keeps the first-order part in x exactly (affine
forms) and bounds only the second-order rest. Everything is batched over (models M,
boxes N): no loop over boxes. Float64 rounding (about 1e-16 relative per operation) is not
enclosed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "activation_slopes",
    "affine_jacobian",
    "box_bounds",
    "jacobian_at",
    "preactivations",
    "relu_patterns",
]

Layers = Sequence[tuple[torch.Tensor, torch.Tensor]]
Interval = tuple[torch.Tensor, torch.Tensor]  # (mid, rad), rad >= 0


def _act(z: torch.Tensor, relu: torch.Tensor) -> torch.Tensor:
    """act(z) per model (z (M, N, H), relu (M,)): ReLU where relu, softplus elsewhere."""
    return torch.where(relu.view(-1, 1, 1), F.relu(z), F.softplus(z))


def preactivations(layers: Layers, relu: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
    """The three hidden pre-activations z_l at points x (M, N, d): each (M, N, H)."""
    out, h = [], x
    for w, c in layers[:-1]:
        out.append(torch.baddbmm(c.unsqueeze(1), h, w.transpose(1, 2)))
        h = _act(out[-1], relu)
    return out


def activation_slopes(
    z_lo: torch.Tensor, z_hi: torch.Tensor, relu: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """[act'(z_lo), act'(z_hi)]: bounds of act' over z in [z_lo, z_hi] (act' non-decreasing).

    ReLU: 1[z > 0], with [0, 1] when the interval touches 0 (its subgradients there); at a
    point (z_lo = z_hi) the first is autograd's derivative.
    """
    r = relu.view(-1, 1, 1)
    d_lo = torch.where(r, (z_lo > 0).to(z_lo.dtype), torch.sigmoid(z_lo))
    d_hi = torch.where(r, (z_hi >= 0).to(z_hi.dtype), torch.sigmoid(z_hi))
    return d_lo, d_hi


def jacobian_at(layers: Layers, slopes: Sequence[torch.Tensor]) -> torch.Tensor:
    """J_eps = W_4 D_3 W_3 D_2 W_2 D_1 W_1 for given slopes D_l (M, N, H): (M, N, d, d),
    J[..., k, l] = d eps_k / d x_l."""
    j = _units(slopes[0], 4) * layers[0][0].unsqueeze(-1)
    for (w, _), d in zip(layers[1:-1], slopes[1:], strict=True):
        j = _units(d, 4) * _matmul(w, j)
    return _boxes_first(_matmul(layers[-1][0], j))


# Inside the forward-mode passes, per-unit tensors are (M, H, ..., N): units first, so that
# W x is one bmm of (M, out, in) with the contiguous (M, in, ... * N), and boxes last, so that
# a per-unit factor broadcasts over the middle axes with the box axis contiguous (fast).
def _units(d: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-box, per-unit tensor (M, N, H) as (M, H, 1, ..., N) of ``ndim`` dimensions."""
    t = d.transpose(1, 2)
    return t.reshape(t.shape[:2] + (1,) * (ndim - 3) + t.shape[2:])


def _boxes_first(x: torch.Tensor) -> torch.Tensor:
    """(M, a, b, ..., N) -> (M, N, a, b, ...)."""
    return x.movedim(-1, 1)


def _matmul(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W x per unit axis: W (M, out, in), x (M, in, ..., N) -> (M, out, ..., N)."""
    m, k = x.shape[:2]
    out = torch.bmm(w, x.reshape(m, k, -1))
    return out.view(m, w.shape[1], *x.shape[2:])


def _scaled(d: Interval, x: Interval) -> Interval:
    """d x for d >= 0 (per unit, (M, H, 1, ..., N)) and an interval x: mid d_m x_m, rad
    d_m x_r + d_r (|x_m| + x_r) (the product rule of intervals with |d_m| = d_m)."""
    return d[0] * x[0], d[0] * x[1] + d[1] * (x[0].abs() + x[1])


def _tightened(
    w: torch.Tensor,
    c: torch.Tensor,
    h: Interval,
    z_c: torch.Tensor,
    jz: Interval,
    rad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of z = W h + c over a box: the natural one, z_mid = W h_mid + c with radius
    |W| h_rad, intersected with the mean value form z(c) +- sum_b max |dz / dx_b| r_b (``jz``
    encloses dz/dx over the box, ``z_c`` = z at its centre, ``rad`` its half-widths)."""
    zm = torch.baddbmm(c.unsqueeze(1), h[0], w.transpose(1, 2))
    zr = torch.bmm(h[1], w.abs().transpose(1, 2))
    spread = ((jz[0].abs() + jz[1]) * rad.transpose(1, 2).unsqueeze(1)).sum(2).transpose(1, 2)
    return torch.maximum(zm - zr, z_c - spread), torch.minimum(zm + zr, z_c + spread)


def box_bounds(
    layers: Layers,
    relu: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    z_centre: Sequence[torch.Tensor],
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], Interval]:
    """Over each box [lo, hi] (M, N, d): bounds of the pre-activations z_l and an interval
    enclosure of J_eps.

    One forward pass. Per layer, z_l's bounds (``_tightened``; ``z_centre``: the z_l at the
    box centres, ``preactivations``) give the slopes [act'(z_lo), act'(z_hi)]; with Jz the
    x-derivative of z_l (Jz_1 = W_1) and h = act(z), Jh = act'(z) Jz and the next layer's Jz is
    W Jh. Returns the three (z_lo, z_hi), each (M, N, H), and the Jacobian (M, N, d, d) as
    (mid, rad).
    """
    rad = 0.5 * (hi - lo)
    h: Interval = (0.5 * (lo + hi), rad)
    w1 = layers[0][0].unsqueeze(-1).expand(-1, -1, -1, lo.shape[1])
    jz: Interval = (w1, torch.zeros_like(w1))
    z_bounds = []
    for (w, c), z_c, (w_next, _) in zip(layers[:-1], z_centre, layers[1:], strict=True):
        z_lo, z_hi = _tightened(w, c, h, z_c, jz, rad)
        z_bounds.append((z_lo, z_hi))
        d_lo, d_hi = activation_slopes(z_lo, z_hi, relu)
        d = (0.5 * (d_lo + d_hi), 0.5 * (d_hi - d_lo))
        jh = _scaled((_units(d[0], 4), _units(d[1], 4)), jz)
        jz = (_matmul(w_next, jh[0]), _matmul(w_next.abs(), jh[1]))
        h_lo, h_hi = _act(z_lo, relu), _act(z_hi, relu)
        h = (0.5 * (h_lo + h_hi), 0.5 * (h_hi - h_lo))
    return z_bounds, (_boxes_first(jz[0]), _boxes_first(jz[1]))


def relu_patterns(
    d_lo: torch.Tensor, d_hi: torch.Tensor, n_free: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2^n_free activation patterns of boxes with at most ``n_free`` undecided ReLUs.

    d_lo, d_hi: (M, N, L*H) slopes of all hidden units (0 or 1 each; d_lo < d_hi: undecided).
    Pattern p sets the k-th undecided unit of a box (in unit order) to bit k of p. Returns
    the patterns (2^n_free, M, N, L*H) and a mask (M, N) of the boxes with at most n_free
    undecided units (for the others the patterns are not all of theirs).
    """
    free = d_hi > d_lo
    rank = torch.cumsum(free.to(torch.int64), dim=-1) - 1
    bits = torch.arange(2**n_free).view(-1, 1, 1, 1)
    on = (bits >> rank.clamp(0, max(n_free - 1, 0)).unsqueeze(0)) & 1
    patterns = torch.where(free.unsqueeze(0), on.to(d_lo.dtype), d_lo.unsqueeze(0))
    return patterns, free.sum(-1) <= n_free


#: max |sigmoid''| = max |s (1 - s) (1 - 2 s)| = 1 / (6 sqrt(3)), at s = 1/2 -+ 1/(2 sqrt(3)).
SIGMOID_CURVATURE = (1.0 + 1e-12) / (6.0 * 3.0**0.5)

# An affine form over a box x = c + delta, |delta_b| <= r_b: f(x) = f0 + sum_b fl_b delta_b + e
# with |e| <= fE. Per-unit forms are (f0 (M, H, N), fl (M, H, B, N), fE (M, H, N)), Jacobian
# forms (M, H, A, N), (M, H, A, B, N), (M, H, A, N): units first, boxes last, B = A = d.
Affine = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _spread(fl: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """max over the box of |fl . delta| = sum_b |fl_b| r_b (the coefficient axis is -2)."""
    return (fl.abs() * r).sum(-2)


def _taylor(
    z: Affine, f0: torch.Tensor, f1: torch.Tensor, curvature: torch.Tensor, rho: torch.Tensor
) -> Affine:
    """f(z) for a unit form z, with f(z0) = f0, f'(z0) = f1 and |f''| <= curvature on
    [z0 - rho, z0 + rho], rho >= |z - z0| over the box: f(z) = f0 + f1 (zl . delta) + rest,
    |rest| <= |f1| zE + curvature / 2 rho^2 (Taylor's theorem with the Lagrange remainder)."""
    return f0, f1.unsqueeze(2) * z[1], f1.abs() * z[2] + 0.5 * curvature * rho.square()


def _curvatures(z_lo: torch.Tensor, z_hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Over [z_lo, z_hi]: max softplus'' = max s (1 - s) (s = sigmoid: largest at z = 0, else at
    the end nearer 0) and a bound of |sigmoid''| = s (1 - s) |1 - 2 s| by the product of the
    two factors' maxima (|1 - 2 s| is largest at an end)."""
    a, b = torch.sigmoid(z_lo), torch.sigmoid(z_hi)
    ends = torch.maximum(a * (1 - a), b * (1 - b))
    top = torch.where((z_lo <= 0) & (z_hi >= 0), torch.full_like(a, 0.25), ends)
    tilt = torch.maximum((1 - 2 * a).abs(), (1 - 2 * b).abs())
    return top, torch.minimum(top * tilt, torch.full_like(a, SIGMOID_CURVATURE))


def _scale_rows(d: Affine, j: Affine, r: torch.Tensor) -> Affine:
    """The unit-wise product d_k J[k, a] of a unit form d and a Jacobian form J:
    d J = d0 J0 + (d0 Jl + J0 dl) . delta + rest,
    |rest| <= D Q + (|d0| + D) JE + (|J0| + Q) dE + dE JE, D = |dl . delta|, Q = |Jl . delta|."""
    d0, dl, dE = d[0].unsqueeze(2), d[1].unsqueeze(2), d[2].unsqueeze(2)
    D, Q = _spread(d[1], r.unsqueeze(1)).unsqueeze(2), _spread(j[1], r.unsqueeze(1).unsqueeze(1))
    lin = d0.unsqueeze(3) * j[1] + j[0].unsqueeze(3) * dl
    rest = D * Q + (d0.abs() + D) * j[2] + (j[0].abs() + Q) * dE + dE * j[2]
    return d0 * j[0], lin, rest


def _scale_constant(d: Affine, w: torch.Tensor) -> Affine:
    """``_scale_rows`` for a constant Jacobian W (M, H, A) (layer 1: Jz_1 = W_1, with no
    first-order part and no rest): d W = d0 W + (W dl) . delta + rest, |rest| <= |W| dE."""
    wk = w.unsqueeze(-1)
    return (
        d[0].unsqueeze(2) * wk,
        wk.unsqueeze(-1) * d[1].unsqueeze(2),
        wk.abs() * d[2].unsqueeze(2),
    )


def _linear(w: torch.Tensor, f: Affine) -> Affine:
    """W f for a weight (M, out, in): exact on the affine part, |W| on the remainder."""
    return _matmul(w, f[0]), _matmul(w, f[1]), _matmul(w.abs(), f[2])


def affine_jacobian(layers: Layers, lo: torch.Tensor, hi: torch.Tensor) -> Affine:
    """An affine enclosure of a softplus MLP's Jacobian over each box [lo, hi] (M, N, d):

        J_eps(c + delta) = J0 + sum_b Jl[..., b] delta_b + E,  |E| <= JE entrywise,

    with J0 = J_eps(c) and Jl[k, a, b] = d^2 eps_k / dx_a dx_b (c) exact: the first-order
    part carries every cancellation between units, which intervals lose (on a near-linear
    field they overestimate the Jacobian's range by 100x and more); only the second-order
    rest is bounded entrywise. Per layer, z = W h + c as an affine form, then by Taylor at
    z0 = z(c): softplus(z) and D = sigmoid(z), with |softplus''| and |sigmoid''| bounded over
    each pre-activation's range [z0 - rho, z0 + rho] (``_curvatures``; at most 1/4 and
    1 / (6 sqrt 3) anywhere), and Jh = D Jz as a product of forms (``_scale_rows``); Jz of
    the next layer is W Jh. The last hidden layer's softplus form is not needed (only the
    Jacobian's). Returns (J0, Jl, JE): (M, N, d, d), (M, N, d, d, d), (M, N, d, d),
    J[..., k, a] = d eps_k / dx_a.
    """
    c, r = (0.5 * (lo + hi)).transpose(1, 2), (0.5 * (hi - lo)).transpose(1, 2)  # (M, d, N)
    M, d, N = c.shape
    w1, c1 = layers[0]
    eye = torch.eye(d, dtype=c.dtype).view(1, d, d, 1).expand(M, d, d, N)
    z: Affine = _linear(w1, (c, eye, torch.zeros_like(c)))
    z = (z[0] + c1.unsqueeze(-1), z[1], z[2])
    jz: Affine | None = None  # Jz_1 = W_1, a constant: ``_scale_constant`` for layer 1
    for i, (w, b) in enumerate(layers[1:], start=2):
        s = torch.sigmoid(z[0])
        rho = _spread(z[1], r.unsqueeze(1)) + z[2]
        k_h, k_d = _curvatures(z[0] - rho, z[0] + rho)
        slope = _taylor(z, s, s * (1 - s), k_d, rho)
        jh = _scale_constant(slope, w1) if jz is None else _scale_rows(slope, jz, r)
        jz = _linear(w, jh)
        if i < len(layers):  # the output layer's value is not needed, only its Jacobian
            z = _linear(w, _taylor(z, F.softplus(z[0]), s, k_h, rho))
            z = (z[0] + b.unsqueeze(-1), z[1], z[2])
    return _boxes_first(jz[0]), _boxes_first(jz[1]), _boxes_first(jz[2])
