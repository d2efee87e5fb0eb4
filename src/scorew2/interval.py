"""Enclosures of an MLP's Jacobian and Hessian over boxes (the certified L_s, docs/paper.md 3).

The network at a step is the plain MLP of ``ScoreNet.step_mlp``:

    z_l = W_l h_{l-1} + c_l,  h_l = act(z_l)  (l = 1..3, h_0 = x),  eps(x) = W_4 h_3 + c_4,
    J_eps(x) = W_4 D_3 W_3 D_2 W_2 D_1 W_1,   D_l = diag(act'(z_l(x))),

act = softplus (act' = sigmoid, increasing) or ReLU (act' = 1[z > 0], a step). Over a box
[lo, hi] every z_l lies in an interval, so every D_l lies in [act'(z_lo), act'(z_hi)] (act' is
non-decreasing), and interval arithmetic through the products bounds J_eps (and, for
softplus, the Hessian) entrywise at every x of the box. Intervals are (mid, rad) pairs:
a point matrix times an interval is exact entrywise (mid W m, rad |W| r); a product of two
intervals has mid a_m b_m and rad |a_m| b_r + a_r |b_m| + a_r b_r. Everything is batched over
(models M, boxes N): no loop over boxes. Float64 rounding (about 1e-16 relative per
operation) is not enclosed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "activation_slopes",
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


def _curvature(z_lo: torch.Tensor, z_hi: torch.Tensor) -> Interval:
    """softplus''(z) = sigmoid(z) (1 - sigmoid(z)) over [z_lo, z_hi]: it rises to its maximum
    1/4 at z = 0 and falls after, so the ends give the minimum."""
    a, b = torch.sigmoid(z_lo), torch.sigmoid(z_hi)
    a, b = a * (1 - a), b * (1 - b)
    lo = torch.minimum(a, b)
    hi = torch.where((z_lo <= 0) & (z_hi >= 0), torch.full_like(a, 0.25), torch.maximum(a, b))
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _scaled(d: Interval, x: Interval) -> Interval:
    """d x for d >= 0 (per unit, (M, H, 1, ..., N)) and an interval x: mid d_m x_m, rad
    d_m x_r + d_r (|x_m| + x_r) (the product rule of intervals with |d_m| = d_m)."""
    return d[0] * x[0], d[0] * x[1] + d[1] * (x[0].abs() + x[1])


def _second_order(jz: Interval, curv: Interval) -> Interval:
    """act''(z_k) Jz[k, a] Jz[k, b] as an interval: the outer product of Jz with itself
    (mid m_a m_b, rad (|m_a| + r_a)(|m_b| + r_b) - |m_a| |m_b|), scaled by act'' >= 0."""
    m, a = jz[0], jz[0].abs()
    top = a + jz[1]
    outer = (
        m.unsqueeze(3) * m.unsqueeze(2),
        top.unsqueeze(3) * top.unsqueeze(2) - a.unsqueeze(3) * a.unsqueeze(2),
    )
    return _scaled(curv, outer)


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
    hessian: bool,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], Interval, Interval | None]:
    """Over each box [lo, hi] (M, N, d): bounds of the pre-activations z_l, and enclosures of
    J_eps and (``hessian``: for softplus units) of the Hessian of eps.

    One forward pass. Per layer, z_l's bounds (``_tightened``; ``z_centre``: the z_l at the
    box centres, ``preactivations``) give the slopes [act'(z_lo), act'(z_hi)]; with Jz, Hz
    the first and second x-derivatives of z_l (Jz_1 = W_1, Hz_1 = 0) and h = act(z):

        Jh = act'(z) Jz,  Hh[k, a, b] = act''(z_k) Jz[k, a] Jz[k, b] + act'(z_k) Hz[k, a, b],

    then Jz, Hz of the next layer are W Jh, W Hh. Returns the three (z_lo, z_hi), each
    (M, N, H), the Jacobian (M, N, d, d) and the Hessian (M, N, d, d, d)
    (H[..., k, a, b] = d^2 eps_k / dx_a dx_b) as (mid, rad). The Hessian does not hold for
    ReLU units: their second derivative is a point mass on the kinks.
    """
    rad = 0.5 * (hi - lo)
    h: Interval = (0.5 * (lo + hi), rad)
    w1 = layers[0][0].unsqueeze(-1).expand(-1, -1, -1, lo.shape[1])
    jz: Interval = (w1, torch.zeros_like(w1))
    hz: Interval | None = None
    z_bounds = []
    for (w, c), z_c, (w_next, _) in zip(layers[:-1], z_centre, layers[1:], strict=True):
        z_lo, z_hi = _tightened(w, c, h, z_c, jz, rad)
        z_bounds.append((z_lo, z_hi))
        d_lo, d_hi = activation_slopes(z_lo, z_hi, relu)
        d = (0.5 * (d_lo + d_hi), 0.5 * (d_hi - d_lo))
        if hessian:
            curv = _curvature(z_lo, z_hi)
            hh = _second_order(jz, (_units(curv[0], 5), _units(curv[1], 5)))
            if hz is not None:
                term = _scaled((_units(d[0], 5), _units(d[1], 5)), hz)
                hh = (hh[0] + term[0], hh[1] + term[1])
            hz = (_matmul(w_next, hh[0]), _matmul(w_next.abs(), hh[1]))
        jh = _scaled((_units(d[0], 4), _units(d[1], 4)), jz)
        jz = (_matmul(w_next, jh[0]), _matmul(w_next.abs(), jh[1]))
        h_lo, h_hi = _act(z_lo, relu), _act(z_hi, relu)
        h = (0.5 * (h_lo + h_hi), 0.5 * (h_hi - h_lo))
    J = (_boxes_first(jz[0]), _boxes_first(jz[1]))
    H = None if hz is None else (_boxes_first(hz[0]), _boxes_first(hz[1]))
    return z_bounds, J, H


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
