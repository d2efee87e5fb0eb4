"""Edges of the certificate (scorew2.lipschitz.certified_lipschitz) that the closed-form tests
of tests/test_certified.py leave open: the Gershgorin bound for d != 2, what the certificate
returns beyond its bounds (argmax, box counts, dtypes), the settling rule, the box budget,
degenerate boxes, the dimension up to which the affine enclosure is used, the order of the
affine bound, and each refusal's message.

Written against the survivors of the mutation run (tests/mutation/report.md).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

from scorew2.interval import box_bounds, preactivations
from scorew2.lipschitz import (
    AFFINE_MAX_DIM,
    _box_values,
    _sym_top_eig,
    _sym_top_eig_upper,
    certified_lipschitz,
    jacobian_sym_eigs,
)
from scorew2.model import ScoreNet
from scorew2.schedule import make_schedule

torch.set_num_threads(1)

SCHED = make_schedule("sigmoid", 4, 1e-4, 0.2)
STEP = 2
BOX = (np.array([-1.0, -0.5]), np.array([0.5, 1.0]))


def score_field(net: ScoreNet):
    def field(x: torch.Tensor) -> torch.Tensor:
        t = torch.full(x.shape[:2], STEP, dtype=torch.long)
        return SCHED.eps_to_score(net(x, t).double(), STEP)

    return field


def value_at(net: ScoreNet, points: np.ndarray) -> np.ndarray:
    """lambda_max(sym grad s) of model m at points[m] (M, d), by autograd."""
    x = torch.as_tensor(points, dtype=torch.float64).unsqueeze(1)
    return jacobian_sym_eigs(score_field(net), x).squeeze(1).numpy()


def gershgorin(J: np.ndarray) -> float:
    """max_i (S_ii + sum_{j != i} |S_ij|), S = (J + J^T) / 2, row by row."""
    S = 0.5 * (J + J.T)
    return max(S[i, i] + sum(abs(S[i, j]) for j in range(len(S)) if j != i) for i in range(len(S)))


@pytest.mark.parametrize("d", [1, 3, 4])
def test_gershgorin_bound_beyond_two_dimensions(d: int) -> None:
    g = torch.Generator().manual_seed(d)
    a = torch.randn(50, 3, d, d, generator=g, dtype=torch.float64)
    b = torch.randn(50, 3, d, d, generator=g, dtype=torch.float64)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    up = _sym_top_eig_upper(lo, hi)
    assert up.shape == (50, 3)
    for _ in range(10):
        inside = lo + torch.rand(lo.shape, generator=g, dtype=torch.float64) * (hi - lo)
        assert (_sym_top_eig(inside) <= up + 1e-12).all()
    # on point intervals: exactly Gershgorin's bound of the matrix
    point = _sym_top_eig_upper(a, a)
    expected = np.array([[gershgorin(m) for m in row] for row in a.numpy()])
    np.testing.assert_allclose(point.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (7, 3, 3), (2, 5, 4, 4)])
def test_gershgorin_bound_any_batch_shape(shape: tuple[int, ...]) -> None:
    """The d != 2 bound on one matrix, a batch, or a batch of batches: Gershgorin's bound of
    each (point intervals)."""
    a = torch.randn(*shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    up = _sym_top_eig_upper(a, a)
    expected = np.array([gershgorin(m) for m in a.reshape(-1, *shape[-2:]).numpy()])
    assert up.shape == shape[:-2]
    np.testing.assert_allclose(up.reshape(-1).numpy(), expected, rtol=0, atol=1e-12)


def test_sym_top_eig_any_batch_shape() -> None:
    """The closed forms (d = 1, 2) and eigvalsh (d = 3) whatever the batch dimensions,
    including a batch of exactly 2 points in d = 3."""
    g = torch.Generator().manual_seed(4)
    for shape in [(2, 3, 3), (5, 2, 3, 3), (3, 2, 2), (2, 1, 1), (4, 2, 1, 1)]:
        J = torch.randn(*shape, generator=g, dtype=torch.float64)
        ref = torch.linalg.eigvalsh(0.5 * (J + J.transpose(-1, -2)))[..., -1]
        torch.testing.assert_close(_sym_top_eig(J), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("reg", ["none", "spectral_norm"])
def test_what_a_certificate_returns(reg: str) -> None:
    """lower is the value at argmax (a point of the box); n_boxes counts every box evaluated
    (1 + 2 per bisection: odd); boxes settle within half the tolerance of the lower bound."""
    net = ScoreNet(SCHED.T, [1, 2, 3], reg, init="xavier").eval()
    tol = 1e-3
    cert = certified_lipschitz(net, STEP, SCHED.alpha_bars, *BOX, tol=tol)
    assert cert.converged.dtype == np.bool_ and cert.converged.all()
    assert cert.n_boxes.dtype.kind == "i" and (cert.n_boxes > 1).all()
    assert (cert.n_boxes % 2 == 1).all()
    assert ((cert.argmax >= BOX[0]) & (cert.argmax <= BOX[1])).all()
    np.testing.assert_allclose(value_at(net, cert.argmax), cert.lower, rtol=1e-6, atol=1e-9)
    slack = 0.5 * tol * np.maximum(1.0, np.abs(cert.lower))
    assert (cert.upper - cert.lower <= slack + 1e-12).all()


def test_degenerate_box_is_the_value_at_its_point() -> None:
    net = ScoreNet(SCHED.T, [4, 5], "none", init="xavier").eval()
    p = np.array([0.2, -0.3])
    cert = certified_lipschitz(net, STEP, SCHED.alpha_bars, p, p)
    np.testing.assert_allclose(cert.lower, value_at(net, np.stack([p, p])), rtol=1e-6)
    np.testing.assert_allclose(cert.upper, cert.lower, rtol=0, atol=1e-12)
    assert (cert.n_boxes == 1).all()


def test_box_budget_counts_live_boxes() -> None:
    """max_boxes bounds the boxes of the next round: with 2, the root's two children are
    still evaluated (3 boxes), with 1 only the root."""
    net = ScoreNet(SCHED.T, [0], "none", init="xavier").eval()
    box = (np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert certified_lipschitz(net, STEP, SCHED.alpha_bars, *box, max_boxes=1).n_boxes[0] == 1
    two = certified_lipschitz(net, STEP, SCHED.alpha_bars, *box, max_boxes=2)
    assert two.n_boxes[0] == 3 and not two.converged[0]


def _root_upper(net: ScoreNet, lo: np.ndarray, hi: np.ndarray, enclosure: str) -> np.ndarray:
    """The enclosure's bound over the whole box (no bisection: max_boxes=1)."""
    return certified_lipschitz(
        net, STEP, SCHED.alpha_bars, lo, hi, max_boxes=1, enclosure=enclosure
    ).upper


def test_affine_vertex_bound_is_second_order() -> None:
    """The affine bound's excess over the sup of a box (its max over a dense grid) falls about
    4x when the box halves: the vertices of the box itself are used, not of a larger one."""
    net = ScoreNet(SCHED.T, [7], "none", init="xavier").eval()
    c = np.array([0.3, -0.2])
    excess = []
    for r in (0.1, 0.05, 0.025):
        lo, hi = c - r, c + r
        u = np.linspace(0.0, 1.0, 41)
        grid = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2) * (2 * r) + lo
        x = torch.as_tensor(grid).unsqueeze(0)
        sup = float(jacobian_sym_eigs(score_field(net), x).max())
        excess.append(float(_root_upper(net, lo, hi, "auto")[0]) - sup)
    assert excess[0] / excess[1] > 3 and excess[1] / excess[2] > 3


def test_interval_bound_on_small_boxes_holds_the_centre() -> None:
    """On boxes of width 1e-3 the interval bound is tight: it never falls below the value at
    the box centre (the off-diagonal bound takes the larger modulus of the interval's ends)."""
    net = ScoreNet(SCHED.T, list(range(8)), "none", init="xavier").eval()
    rng = np.random.default_rng(0)
    for c in rng.uniform(-1.5, 1.5, size=(12, 8, 2)):
        up = _root_upper(net, c - 5e-4, c + 5e-4, "interval")
        assert (up >= value_at(net, c) - 1e-6 * np.abs(up)).all()


def test_interval_bound_covers_its_whole_enclosure() -> None:
    """The interval path's bound is lambda_max over every matrix of its enclosure
    [J_m - J_r, J_m + J_r] of J_eps: it is at least the value at each matrix whose diagonal is at
    the end that maximises sym J_s = -scale sym J_eps and whose two off-diagonal entries are at
    either end (the off-diagonal bound must take the larger modulus of the two ends)."""
    net = ScoreNet(SCHED.T, list(range(8)), "none", init="xavier").eval()
    layers, relu = net.step_mlp(STEP)
    scale = float(1.0 / np.sqrt(1.0 - SCHED.alpha_bars[STEP]))
    c = torch.as_tensor(np.random.default_rng(1).uniform(-1.5, 1.5, size=(8, 16, 2)))
    lo, hi = c - 0.3, c + 0.3
    upper, _ = _box_values(layers, relu, scale, lo, hi, n_free=0, affine=False)
    _, (J_m, J_r) = box_bounds(layers, relu, lo, hi, preactivations(layers, relu, c))
    for s01, s10 in itertools.product((-1.0, 1.0), repeat=2):
        sign = torch.tensor([[-1.0, s01], [s10, -1.0]], dtype=torch.float64)
        J_s = -scale * (J_m + sign * J_r)
        assert (upper >= _sym_top_eig(J_s) - 1e-9 * upper.abs().clamp(min=1.0)).all()


def test_affine_enclosure_up_to_its_dimension() -> None:
    """Softplus networks get the affine bound up to AFFINE_MAX_DIM coordinates, intervals
    beyond."""
    for d, same in ((AFFINE_MAX_DIM, False), (AFFINE_MAX_DIM + 1, True)):
        net = ScoreNet(SCHED.T, [0, 1], "none", dim=d, init="xavier").eval()
        lo, hi = np.full(d, -0.05), np.full(d, 0.05)
        auto, interval = _root_upper(net, lo, hi, "auto"), _root_upper(net, lo, hi, "interval")
        assert np.array_equal(auto, interval) == same, d


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tol=1.0), "tol: expected a number in (0, 1), got 1.0"),
        (dict(tol=float("nan")), "tol: expected a number in (0, 1)"),
        (dict(tol="0.1"), "tol: expected a number in (0, 1)"),
        (dict(enclosure="taylor"), "unknown enclosure 'taylor'"),
        (dict(alpha_bars=[["a"]] * 4), "alpha_bars: cannot be read as an array of numbers"),
        (dict(alpha_bars=np.ones(3)), "alpha_bars: expected shape (4,), got (3,)"),
        (dict(lo=np.zeros(3)), "lo: expected finite values of shape (2,) or (1, 2), got (3,)"),
        (dict(lo=[["x", "y"]]), "lo: cannot be read as an array of numbers"),
        (dict(hi=[np.inf, 1.0]), "hi: expected finite values of shape (2,) or (1, 2)"),
        (dict(lo=np.ones(2), hi=np.zeros(2)), "lo, hi: need lo <= hi in every coordinate"),
    ],
)
def test_refusals_name_the_argument(kwargs: dict, message: str) -> None:
    net = ScoreNet(SCHED.T, [0], "none").eval()
    args = dict(alpha_bars=SCHED.alpha_bars, lo=np.zeros(2), hi=np.ones(2)) | kwargs
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        certified_lipschitz(
            net, STEP, args.pop("alpha_bars"), args.pop("lo"), args.pop("hi"), **args
        )
