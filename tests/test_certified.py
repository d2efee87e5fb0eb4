"""Tests of the certified one-sided Lipschitz bounds (scorew2.lipschitz.certified_lipschitz).

Closed forms: ScoreNets built by hand to compute a linear field exactly (softplus(u) -
softplus(-u) = u carries a value through a layer) and a field with one bent direction whose
sup over a box is known; random ScoreNets of each regulariser against a dense grid; the
monotone 2 x 2 bound on random interval matrices.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.interval import activation_slopes, affine_jacobian, jacobian_at, preactivations
from scorew2.lipschitz import (
    _sym_top_eig,
    _sym_top_eig_upper,
    certified_lipschitz,
    jacobian_sym_eigs,
    region_grid,
)
from scorew2.model import ScoreNet
from scorew2.schedule import make_schedule

torch.set_num_threads(1)

SCHED = make_schedule("sigmoid", 4, 1e-4, 0.2)
STEP = 2
SCALE = float(1.0 / np.sqrt(1.0 - SCHED.alpha_bars[STEP]))


def _carrier(A: np.ndarray, u: np.ndarray | None, c: float) -> ScoreNet:
    """A softplus ScoreNet (hidden 8) with eps(x) = A x - c u softplus(u . x) (c = 0: linear).

    Layer 1 units: +-x_1, +-x_2, u . x; layers 2 and 3 pass x_1, x_2 and softplus(u . x) on
    as softplus pairs (softplus(v) - softplus(-v) = v); the last layer combines them. Every
    gate is 1 at every step.
    """
    net = ScoreNet(SCHED.T, None, "none", n_models=1, hidden=8).eval()
    p = net.params()
    with torch.no_grad():
        p["gamma"].fill_(1.0)
        W1 = np.zeros((8, 2))
        W1[0, 0], W1[1, 0], W1[2, 1], W1[3, 1] = 1, -1, 1, -1
        if u is not None:
            W1[4] = u
        P = np.zeros((8, 8))  # (v_a - v_b) pairs -> +-v, and h_4 -> +-h_4
        for k, (a, b) in enumerate([(0, 1), (2, 3)]):
            P[2 * k, a], P[2 * k, b] = 1, -1
            P[2 * k + 1, a], P[2 * k + 1, b] = -1, 1
        P[4, 4], P[5, 4] = 1, -1
        P2 = P.copy()  # layer 3 reads h_4 as the pair (4, 5)
        P2[4, 4], P2[4, 5], P2[5, 4], P2[5, 5] = 1, -1, -1, 1
        W4 = np.zeros((2, 8))
        for i in range(2):
            W4[:, 2 * i] += A[:, i]
            W4[:, 2 * i + 1] -= A[:, i]
        if u is not None:
            W4[:, 4] -= c * u
            W4[:, 5] += c * u
        for name, w in (("W1", W1), ("W2", P), ("W3", P2), ("W4", W4)):
            p[name].copy_(torch.as_tensor(w, dtype=torch.float32).unsqueeze(0))
        for name in ("c1", "c2", "c3", "c4"):
            p[name].zero_()
    return net


def _grid_max(net: ScoreNet, lo: np.ndarray, hi: np.ndarray, n: int = 161) -> np.ndarray:
    """The max of lambda_max(sym grad s) over an n x n grid of the box (a lower estimate)."""
    grid = region_grid(np.stack([lo, hi]), n)

    def field(x: torch.Tensor) -> torch.Tensor:
        t = torch.full(x.shape[:2], STEP, dtype=torch.long)
        return SCHED.eps_to_score(net(x, t).double(), STEP)

    return jacobian_sym_eigs(field, grid, n_fields=net.n_models).amax(1).numpy()


def _check(cert, truth: np.ndarray, tol: float) -> None:
    assert (cert.lower <= truth + 1e-9).all()
    assert (cert.upper >= truth - 1e-9).all()
    assert (cert.upper - cert.lower <= tol * np.maximum(1.0, np.abs(cert.upper)) + 1e-12).all()
    assert cert.converged.all()


def test_linear_field_exact_value() -> None:
    A = np.array([[0.3, 1.2], [-0.4, -0.8]])
    net = _carrier(A, None, 0.0)
    lo, hi = np.array([-2.0, -1.0]), np.array([1.5, 2.5])
    cert = certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, hi, tol=1e-3)
    J = torch.as_tensor(-SCALE * A.astype(np.float32).astype(np.float64))
    truth = float(_sym_top_eig(J))
    _check(cert, np.array([truth]), 1e-3)
    assert abs(cert.lower[0] - truth) < 1e-5 * abs(truth)  # float32 weights: A exactly


@pytest.mark.parametrize("corner", [(1.0, 0.5), (-0.5, -1.0)])
def test_bent_field_known_sup(corner: tuple[float, float]) -> None:
    """eps = x - c u softplus(u . x): grad s = -SCALE (I - c sigmoid(u . x) u u^T), whose top
    eigenvalue SCALE (c sigmoid(u . x) - 1) peaks where u . x is largest on the box: at the
    corner ``hi`` for u = (0.6, 0.8) > 0."""
    u, c = np.array([0.6, 0.8]), 3.0
    net = _carrier(np.eye(2), u, c)
    hi = np.array(corner)
    lo = hi - np.array([2.0, 1.5])
    p = net.params()
    u32, v32 = (
        p["W1"][0, 4].detach().double(),
        p["W4"][0, :, 4].detach().double(),
    )  # the stored float32 weights
    sig = torch.sigmoid(u32 @ torch.as_tensor(hi))
    truth = float(_sym_top_eig(-SCALE * (torch.eye(2) + sig * torch.outer(v32, u32))))
    assert abs(truth - SCALE * (c * float(sig) - 1.0)) < 1e-5  # v = -c u
    cert = certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, hi, tol=1e-4)
    _check(cert, np.array([truth]), 1e-4)
    assert np.allclose(cert.argmax[0], hi, atol=1e-2)


@pytest.mark.parametrize("reg", ["none", "spectral_norm", "weight_clip"])
def test_random_nets_enclose_the_grid(reg: str) -> None:
    net = ScoreNet(SCHED.T, [0, 1, 2], reg, init="xavier").eval()
    if reg == "weight_clip":
        net.clip_weights_(0.1)
    lo = np.array([[-1.0, -1.0], [-0.5, -2.0], [0.0, 0.0]])
    hi = np.array([[1.0, 1.0], [1.5, 0.0], [0.5, 0.25]])
    tol = 1e-3
    cert = certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, hi, tol=tol)
    dense = np.array([_grid_max(net, lo[m], hi[m])[m] for m in range(3)])
    assert (cert.upper >= dense - 1e-9).all()  # a dense grid never beats the certificate
    assert (cert.lower <= cert.upper).all()
    assert (cert.upper - cert.lower <= tol * np.maximum(1.0, np.abs(cert.upper))).all()
    assert cert.converged.all()
    assert ((cert.argmax >= lo) & (cert.argmax <= hi)).all()


@pytest.mark.parametrize("reg", ["none", "spectral_norm"])
def test_chunk_size_changes_the_certificate_by_rounding_only(reg: str) -> None:
    """Boxes are evaluated independently: 7 or 64 boxes per model per evaluation (many chunks,
    the last one partial) give the same argmax, box counts and convergence as 4096, and the
    same bounds up to rounding. The blocked matrix products round a row differently with the
    size of the batch on some processors: on an AMD EPYC (family 25, model 17) the bounds move
    by 1-6 units in the last place (none on an Intel Xeon model 167); 32 ulps allowed here."""
    net = ScoreNet(SCHED.T, [0, 1, 2], reg, init="xavier").eval()
    lo, hi = np.array([-1.0, -1.5]), np.array([1.0, 0.5])
    ref, *others = (
        certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, hi, chunk=chunk, tol=1e-6)
        for chunk in (4096, 7, 64)
    )
    assert ref.n_boxes.min() > 3 * 64
    for cert in others:
        for name in ("argmax", "n_boxes", "converged"):
            assert np.array_equal(getattr(cert, name), getattr(ref, name)), name
        for name in ("lower", "upper"):
            np.testing.assert_array_max_ulp(getattr(cert, name), getattr(ref, name), maxulp=32)


def _jacobians(layers, relu, x: torch.Tensor) -> torch.Tensor:
    """J_eps at points x (M, n, d) of the step's MLP."""
    z = preactivations(layers, relu, x)
    return jacobian_at(layers, [activation_slopes(a, a, relu)[0] for a in z])


@pytest.mark.parametrize("width", [2.0, 0.5, 0.05])
def test_affine_jacobian_encloses_and_is_exact_to_first_order(width: float) -> None:
    """On random softplus nets and boxes: J0 is the Jacobian at the centre, Jl its derivative
    there (finite differences of the exact Jacobian), and J0 + Jl delta +- JE holds the
    Jacobian at 400 points of each box, corners and edges included."""
    net = ScoreNet(SCHED.T, [5, 6], "none", init="xavier").eval()
    layers, relu = net.step_mlp(STEP)
    g = torch.Generator().manual_seed(1)
    lo = torch.rand(2, 3, 2, generator=g, dtype=torch.float64) * 4 - 2
    hi = lo + width
    J0, Jl, JE = affine_jacobian(layers, lo, hi)
    c = 0.5 * (lo + hi)
    assert torch.allclose(J0, _jacobians(layers, relu, c), rtol=0, atol=1e-12)
    h = 1e-5
    for b in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[b] = h
        fd = (_jacobians(layers, relu, c + e) - _jacobians(layers, relu, c - e)) / (2 * h)
        assert torch.allclose(Jl[..., b], fd, rtol=1e-5, atol=1e-7)
    u = torch.linspace(0, 1, 20, dtype=torch.float64)
    frac = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    for n in range(3):
        x = lo[:, n : n + 1] + frac * (hi - lo)[:, n : n + 1]  # (2, 400, 2)
        lin = J0[:, n : n + 1] + (Jl[:, n : n + 1] * (x - c[:, n : n + 1])[:, :, None, None]).sum(
            -1
        )
        gap = (_jacobians(layers, relu, x) - lin).abs() - JE[:, n : n + 1]
        assert gap.max() <= 1e-12
    assert (JE >= 0).all()


def test_affine_remainder_is_second_order() -> None:
    """Halving the box divides the remainder JE by about 4 (by at least 3 here): the
    enclosure's error is O(r^2), the interval enclosure's O(r)."""
    net = ScoreNet(SCHED.T, [7], "none", init="xavier").eval()
    layers, _ = net.step_mlp(STEP)
    c = torch.tensor([[[0.3, -0.2]]], dtype=torch.float64)
    widths = [0.2, 0.1, 0.05]
    JE = [affine_jacobian(layers, c - w / 2, c + w / 2)[2].max() for w in widths]
    assert JE[0] / JE[1] > 3 and JE[1] / JE[2] > 3


def test_interval_and_affine_enclosures_give_the_same_certificate() -> None:
    """The affine enclosure (the default for softplus networks) and intervals alone bound the
    same sup: their certificates overlap and agree within the tolerance; the affine one
    needs fewer boxes. A bad enclosure name is refused."""
    net = ScoreNet(SCHED.T, [8, 9], "none", init="xavier").eval()
    box = (np.array([-1.0, -0.5]), np.array([0.5, 1.0]))
    a = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box)
    i = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box, enclosure="interval")
    assert (np.maximum(a.lower, i.lower) <= np.minimum(a.upper, i.upper)).all()
    assert (np.abs(a.upper - i.upper) <= 1e-3 * np.maximum(1.0, np.abs(a.upper))).all()
    assert (a.n_boxes < i.n_boxes).all()
    with pytest.raises(ValueError, match="enclosure"):
        certified_lipschitz(net, STEP, SCHED.alpha_bars, *box, enclosure="taylor")


def test_models_are_independent() -> None:
    """Model m's certificate does not depend on the other models of the batch."""
    net = ScoreNet(SCHED.T, [3, 4], "none", init="xavier").eval()
    alone = ScoreNet(SCHED.T, [4], "none", init="xavier").eval()
    box = (np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    both = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box)
    one = certified_lipschitz(alone, STEP, SCHED.alpha_bars, *box)
    assert both.lower[1] == one.lower[0] and both.upper[1] == one.upper[0]


def test_box_budget_keeps_valid_bounds() -> None:
    net = ScoreNet(SCHED.T, [0], "none", init="xavier").eval()
    box = (np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    full = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box)
    cut = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box, max_boxes=8)
    assert not cut.converged[0]
    assert cut.lower[0] <= full.lower[0] <= full.upper[0] <= cut.upper[0]


def test_monotone_2x2_bound_on_random_interval_matrices() -> None:
    """For random entrywise intervals, lambda_max(sym J) of matrices drawn inside never
    exceeds the bound, and the bound is attained at the matrix of its corner."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 2, 2, generator=g, dtype=torch.float64) * 3
    b = torch.randn(2000, 2, 2, generator=g, dtype=torch.float64) * 3
    J_lo, J_hi = torch.minimum(a, b), torch.maximum(a, b)
    up = _sym_top_eig_upper(J_lo, J_hi)
    for _ in range(20):
        w = torch.rand(2000, 2, 2, generator=g, dtype=torch.float64)
        inside = J_lo + w * (J_hi - J_lo)
        assert (_sym_top_eig(inside) <= up + 1e-12).all()
    # the corner: diagonal at the top, off-diagonal sum of largest modulus
    s_lo = J_lo[:, 0, 1] + J_lo[:, 1, 0]
    s_hi = J_hi[:, 0, 1] + J_hi[:, 1, 0]
    pick_hi = s_hi.abs() >= s_lo.abs()
    corner = torch.where(pick_hi.view(-1, 1, 1), J_hi, J_lo).clone()
    corner[:, 0, 0], corner[:, 1, 1] = J_hi[:, 0, 0], J_hi[:, 1, 1]
    assert torch.allclose(_sym_top_eig(corner), up, atol=1e-12)


def test_bad_input() -> None:
    net = ScoreNet(SCHED.T, [0], "none").eval()
    lo, hi = np.zeros(2), np.ones(2)
    with pytest.raises(ValueError, match="lo, hi"):
        certified_lipschitz(net, STEP, SCHED.alpha_bars, hi, lo)
    with pytest.raises(ValueError, match="hi:"):
        certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, [1.0, np.nan])
    with pytest.raises(ValueError, match="tol"):
        certified_lipschitz(net, STEP, SCHED.alpha_bars, lo, hi, tol=0.0)
    with pytest.raises(ValueError, match="step"):
        certified_lipschitz(net, SCHED.T, SCHED.alpha_bars, lo, hi)
    with pytest.raises(ValueError, match="alpha_bars"):
        certified_lipschitz(net, STEP, SCHED.alpha_bars[:-1], lo, hi)
