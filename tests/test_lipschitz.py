"""Tests of scorew2.lipschitz against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.lipschitz import (
    jacobian_sym_eigs,
    one_sided_lipschitz,
    pairs_max_ratio,
    paper_grid,
    region_grid,
)

torch.set_num_threads(1)


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("d", [2, 3])
def test_linear_field(d):
    A = _rand(d, d, seed=d)  # not symmetric
    top = float(torch.linalg.eigvalsh(0.5 * (A + A.T))[-1])
    pts = _rand(600, d, seed=10 + d)

    def field(x):
        return x @ A.T

    jac = one_sided_lipschitz(field, pts, method="jacobian")
    assert abs(jac - top) < 1e-10
    pairs = one_sided_lipschitz(field, pts.numpy(), method="pairs")
    assert pairs <= top + 1e-12  # a Rayleigh quotient never exceeds lambda_max
    assert pairs > top - (2e-3 if d == 2 else 3e-2)  # dense directions come close


def test_gaussian_score_gives_minus_one_over_v():
    v = 0.37
    pts = _rand(200, 2, seed=3)
    for method in ("pairs", "jacobian"):
        value = one_sided_lipschitz(lambda x: -x / v, pts, method=method)
        assert value == pytest.approx(-1 / v, abs=1e-12)


MU = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
SIG2 = 0.1


def _mixture_score(x):
    """Exact score of 1/2 N(-e1, s2 I) + 1/2 N(e1, s2 I) (autograd-able)."""
    logits = -(x[..., None, :] - MU).square().sum(-1) / (2 * SIG2)
    w = torch.softmax(logits, dim=-1)
    return (w @ MU - x) / SIG2


def test_jacobian_at_points_can_miss_what_pairs_and_grid_see():
    # points at the two modes: there the Jacobian is about -1/s2, negative; between the modes
    # lambda_max peaks at x = 0 with -1/s2 + |mu|^2 / s2^2 = 90 (analytic).
    pts = MU[torch.arange(100) % 2] + 0.05 * _rand(100, 2, seed=4)
    at_points = one_sided_lipschitz(_mixture_score, pts, method="jacobian")
    pairs = one_sided_lipschitz(_mixture_score, pts, method="pairs")
    grid = region_grid(pts, n_per_axis=101, margin=0.0)
    on_grid = one_sided_lipschitz(_mixture_score, grid, method="jacobian")
    assert at_points < 0 < pairs
    assert pairs <= on_grid + 1e-9  # the grid closes the gap
    assert on_grid <= 90 + 1e-9 and on_grid > 89.0  # and approaches the true sup from below


def test_jacobian_closed_form_eig_matches_jacrev_eigvalsh():
    pts = _rand(50, 2, seed=5)
    eig = jacobian_sym_eigs(lambda x: _mixture_score(x[0])[None], pts[None])[0]
    J = torch.func.vmap(torch.func.jacrev(_mixture_score))(pts)
    ref = torch.linalg.eigvalsh(0.5 * (J + J.transpose(1, 2)))[:, -1]
    torch.testing.assert_close(eig, ref, rtol=1e-12, atol=1e-10)


def _stacked_mlp(K, seed=0):
    W1, b1 = _rand(K, 2, 16, seed=seed), _rand(K, 1, 16, seed=seed + 1)
    W2 = _rand(K, 16, 2, seed=seed + 2) / 4

    def field(x):  # (K, n, 2) -> (K, n, 2), pointwise in n
        return torch.tanh(x @ W1 + b1) @ W2

    def single(k):
        return lambda x: torch.tanh(x @ W1[k] + b1[k]) @ W2[k]

    return field, single


def test_batched_equals_loop_and_shared_points_equal_expanded():
    K = 4
    field, single = _stacked_mlp(K)
    pts = _rand(300, 2, seed=6)
    batched = jacobian_sym_eigs(field, pts, n_fields=K, chunk_size=64).amax(dim=1)
    assert batched.shape == (K,)
    loop = torch.tensor(
        [one_sided_lipschitz(single(k), pts, method="jacobian") for k in range(K)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(batched, loop, rtol=1e-13, atol=1e-13)
    per_k = _rand(K, 300, 2, seed=7)
    got = jacobian_sym_eigs(field, per_k).amax(dim=1)
    want = torch.tensor(
        [one_sided_lipschitz(single(k), per_k[k], "jacobian") for k in range(K)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)


def test_float32_field_through_casts():
    field, _ = _stacked_mlp(2)
    pts = _rand(100, 2, seed=8)
    got = jacobian_sym_eigs(
        lambda x: field(x.double()).float(), pts, n_fields=2, dtype=torch.float32
    ).amax(dim=1)
    ref = jacobian_sym_eigs(field, pts, n_fields=2).amax(dim=1)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_pairs_skips_coincident_points_and_chunking_is_invisible():
    pts = torch.cat([_rand(50, 2, seed=9), _rand(50, 2, seed=9)])  # every point twice
    A = torch.tensor([[0.3, 2.0], [-1.0, -0.5]], dtype=torch.float64)
    vals = pts @ A.T
    a = pairs_max_ratio(vals, pts)
    b = pairs_max_ratio(vals, pts, chunk_elems=7)
    assert np.isfinite(a) and a == pytest.approx(b, abs=1e-15)


def test_bad_input():
    pts = _rand(10, 2)
    with pytest.raises(ValueError, match="method"):
        one_sided_lipschitz(lambda x: x, pts, method="hessian")
    with pytest.raises(ValueError, match="distinct"):
        one_sided_lipschitz(lambda x: x, torch.zeros(5, 2), method="pairs")
    with pytest.raises(ValueError, match="n_fields"):
        jacobian_sym_eigs(lambda x: x, pts).amax(dim=1)
    with pytest.raises(ValueError, match="field"):
        one_sided_lipschitz(lambda x: x[:, :1], pts, method="pairs")
    with pytest.raises(ValueError, match="points"):
        one_sided_lipschitz(lambda x: x, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="n_per_axis"):
        region_grid(pts, n_per_axis=1)


def test_region_grid_and_paper_grid():
    pts = np.array([[0.0, 1.0], [2.0, -1.0], [1.0, 0.0]])
    g = region_grid(pts, n_per_axis=5, margin=0.5)
    assert g.shape == (25, 2) and g.dtype == torch.float64
    np.testing.assert_allclose(g.min(0).values, [-0.5, -1.5])
    np.testing.assert_allclose(g.max(0).values, [2.5, 1.5])
    assert len(set(g[:, 0].tolist())) == 5
    p = paper_grid()
    assert p.shape == (100, 2)
    np.testing.assert_allclose(p[:10, 0], 0.0)  # first coordinate varies slowest
    np.testing.assert_allclose(p[:10, 1], np.linspace(0, 0.9, 10), atol=1e-15)
    assert float(p.max()) == pytest.approx(0.9) and float(p.min()) == 0.0
