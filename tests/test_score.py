"""Tests of scorew2.score against autograd, closed forms and standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorew2.schedule import make_schedule
from scorew2.score import (
    dsm_floor,
    empirical_score,
    empirical_score_jacobian_eigs,
    exact_scores,
    j_dsm,
    j_sm,
    noised_points,
    scores_and_floor,
)

torch.set_num_threads(1)

SCHED = make_schedule("linear", 10, 1e-3, 0.2)


def _log_mixture(x, data, abar):
    """log p(x) for p = (1/N) sum_n N(sqrt(abar) x_n, (1 - abar) I), per row of x."""
    s2 = 1.0 - abar
    d2 = (x[:, None, :] - math.sqrt(abar) * data[None]).square().sum(-1)
    N, d = data.shape
    return (
        torch.logsumexp(-d2 / (2 * s2), dim=1) - math.log(N) - 0.5 * d * math.log(2 * math.pi * s2)
    )


def _autograd_score(x, data, abar):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_log_mixture(x, data, abar).sum(), x)
    return g


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("abar", [0.999, 0.5, 0.01])
def test_empirical_score_is_gradient_of_log_density(d, abar):
    g = torch.Generator().manual_seed(0)
    data = torch.randn(40, d, generator=g, dtype=torch.float64)
    x = 2 * torch.randn(25, d, generator=g, dtype=torch.float64)
    s = empirical_score(x, data, abar)
    assert s.dtype == torch.float64
    ref = _autograd_score(x, data, abar)
    torch.testing.assert_close(s, ref, rtol=1e-10, atol=1e-10)


def test_empirical_score_stable_far_away_and_tiny_noise():
    g = torch.Generator().manual_seed(1)
    data = torch.randn(30, 2, generator=g, dtype=torch.float64)
    abar = 1.0 - 1e-7
    x = torch.tensor([[50.0, 50.0], [-50.0, 3.0], [0.1, -0.2]], dtype=torch.float64)
    s = empirical_score(x, data, abar)
    assert torch.isfinite(s).all()
    torch.testing.assert_close(s, _autograd_score(x, data, abar), rtol=1e-9, atol=0.0)
    # far away, the nearest component alone carries the weight
    mu = math.sqrt(abar) * data
    near = mu[((x[:1, None] - mu[None]) ** 2).sum(-1).argmin()]
    torch.testing.assert_close(s[0], (near - x[0]) / 1e-7, rtol=1e-6, atol=0.0)


def test_numpy_input_chunking_and_exact_scores_match_loop():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((60, 2))
    xt = rng.standard_normal((SCHED.T, 33, 2))
    full = exact_scores(xt, data, SCHED.alpha_bars)
    tiny = exact_scores(torch.from_numpy(xt), torch.from_numpy(data), SCHED, chunk_bytes=1)
    torch.testing.assert_close(full, tiny, rtol=1e-11, atol=1e-11)
    for i, ab in enumerate(SCHED.alpha_bars):
        torch.testing.assert_close(
            full[i], empirical_score(xt[i], data, ab), rtol=1e-11, atol=1e-11
        )


@pytest.mark.parametrize("chunk_bytes", [1, 60 * 8 * 3 * 10, 60 * 8 * 3 * 33 * 4, 10**9])
def test_one_pass_scores_and_floor_equal_the_separate_ones(chunk_bytes):
    # block shapes: one point, 10 points of one step, 4 whole steps, every step at once
    rng = np.random.default_rng(12)
    data = rng.standard_normal((60, 2)) * 0.4
    xt = rng.standard_normal((SCHED.T, 33, 2))
    score, floor = scores_and_floor(xt, data, SCHED, chunk_bytes=chunk_bytes)
    torch.testing.assert_close(score, exact_scores(xt, data, SCHED), rtol=1e-11, atol=1e-11)
    assert float(floor) == pytest.approx(float(dsm_floor(xt, data, SCHED)), rel=1e-12)
    # the floor by its formula, one step and point at a time
    want = 0.0
    for i, (b, ab) in enumerate(zip(SCHED.betas, SCHED.alpha_bars, strict=True)):
        for x in xt[i]:
            logw = -((x - math.sqrt(ab) * data) ** 2).sum(-1) / (2 * (1 - ab))
            w = np.exp(logw - logw.max())
            w /= w.sum()
            mean = w @ data
            var = float(w @ ((data - mean) ** 2).sum(-1))
            want += 0.5 * b * ab / (1 - ab) ** 2 * var / xt.shape[1]
    assert float(floor) == pytest.approx(want, rel=1e-9)
    with pytest.raises(ValueError, match="xt"):
        scores_and_floor(xt[:, :, :1], data, SCHED)


def test_empirical_score_of_large_gaussian_sample_approaches_analytic():
    rng = np.random.default_rng(3)
    s2, abar = 0.5, 0.6
    v = abar * s2 + 1 - abar
    data = math.sqrt(s2) * rng.standard_normal((40000, 2))
    x = np.array([[0.0, 0.0], [0.5, -0.3], [-0.8, 0.4], [0.2, 0.9]])
    s = empirical_score(x, data, abar).numpy()
    np.testing.assert_allclose(s, -x / v, atol=0.03)
    # and a small sample is visibly worse (the check has teeth)
    s_small = empirical_score(x, data[:20], abar).numpy()
    assert np.abs(s_small + x / v).max() > 0.03


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((3, 2)), np.zeros((4, 3)), 0.5), "x"),
        ((np.zeros((3, 2)), np.zeros((4, 2)), 1.0), "alpha_bar"),
        ((np.zeros((3, 2)), np.full((4, 2), np.nan), 0.5), "data"),
        ((np.zeros((3, 2)), np.zeros((4, 2)), [0.5, 0.6]), "alpha_bar"),
    ],
)
def test_empirical_score_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        empirical_score(*args)


# ------------------------------------------------------------------------------ losses


def _fields(xt, sched):
    """Three 'networks' eps_theta(x, i) evaluated on xt: (3, T, m, d)."""
    g = torch.Generator().manual_seed(7)
    W = torch.randn(2, 2, generator=g, dtype=torch.float64)
    t = torch.arange(sched.T, dtype=torch.float64).view(-1, 1, 1) / sched.T
    f1 = torch.zeros_like(xt)
    f2 = torch.tanh(xt @ W + t)
    f3 = 0.5 * xt + torch.sin(3 * xt[..., [1, 0]])
    return torch.stack([f1, f2, f3])


def _per_sample_cross(eps_a, eps_b, eps, score, sched):
    """Terms whose mean is (J_DSM - J_SM)(a) - (J_DSM - J_SM)(b): the theta cross term."""
    sd = torch.as_tensor(np.sqrt(1 - sched.alpha_bars)).view(-1, 1, 1)
    b = torch.as_tensor(sched.betas).view(-1, 1)
    s_a, s_b, c = -eps_a / sd, -eps_b / sd, -eps / sd
    return -(b * ((s_a - s_b) * (c - score)).sum(-1))  # (T, m)


def _se(z):
    """Standard error of sum_i mean_m z[i, m] (independent draws across m and i)."""
    return float(torch.sqrt((z.var(dim=1) / z.shape[1]).sum()))


@pytest.fixture(scope="module")
def cluster_setup():
    rng = np.random.default_rng(4)
    centres = np.array([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]])
    data = centres[rng.integers(0, 3, 150)] + 0.1 * rng.standard_normal((150, 2))
    pts = noised_points(data, SCHED, n_draws=60, generator=torch.Generator().manual_seed(5))
    score = exact_scores(pts.xt, data, SCHED)
    return data, pts, score


def test_noised_points_layout(cluster_setup):
    data, pts, _ = cluster_setup
    m = 150 * 60
    assert pts.x0_index.shape == (m,) and pts.eps.shape == (SCHED.T, m, 2)
    np.testing.assert_array_equal(np.bincount(pts.x0_index.numpy()), [60] * 150)
    ab = SCHED.alpha_bars[3]
    ref = math.sqrt(ab) * torch.as_tensor(data)[pts.x0_index] + math.sqrt(1 - ab) * pts.eps[3]
    torch.testing.assert_close(pts.xt[3], ref, rtol=0, atol=1e-15)
    again = noised_points(data, SCHED, n_draws=60, generator=torch.Generator().manual_seed(5))
    assert torch.equal(again.xt, pts.xt)


def test_loss_formulas_by_hand():
    sched = make_schedule("linear", 3, 0.1, 0.3)
    g = torch.Generator().manual_seed(0)
    ep, e, s = (torch.randn(3, 4, 2, generator=g, dtype=torch.float64) for _ in range(3))
    b, ab = sched.betas, sched.alpha_bars
    want_dsm = sum(
        0.5 * b[i] / (1 - ab[i]) * float(((ep[i] - e[i]) ** 2).sum(-1).mean()) for i in range(3)
    )
    want_sm = sum(
        0.5 * b[i] * float(((-ep[i] / math.sqrt(1 - ab[i]) - s[i]) ** 2).sum(-1).mean())
        for i in range(3)
    )
    assert float(j_dsm(ep, e, sched)) == pytest.approx(want_dsm, rel=1e-13)
    assert float(j_sm(ep.numpy(), s.numpy(), sched)) == pytest.approx(want_sm, rel=1e-13)
    # leading model dims give one value per model
    batch = torch.stack([ep, 2 * ep])
    out = j_dsm(batch, e, sched)
    assert out.shape == (2,)
    assert float(out[1]) == pytest.approx(float(j_dsm(2 * ep, e, sched)), rel=1e-13)
    with pytest.raises(ValueError, match="eps_pred"):
        j_dsm(ep[:2], e[:2], sched)


def test_jsm_below_jdsm_and_floor_is_theta_free(cluster_setup):
    data, pts, score = cluster_setup
    eps_pred = _fields(pts.xt, SCHED)
    # the exact model: eps = -sqrt(1 - abar) s*
    exact = -torch.as_tensor(np.sqrt(1 - SCHED.alpha_bars)).view(-1, 1, 1) * score
    eps_pred = torch.cat([eps_pred, exact[None]])
    jd, js = j_dsm(eps_pred, pts.eps, SCHED), j_sm(eps_pred, score, SCHED)
    assert (js <= jd).all()
    assert float(js[-1]) < 1e-20
    gap = jd - js
    floor = float(dsm_floor(pts.xt, data, SCHED))
    assert floor > 0
    for k in range(1, eps_pred.shape[0]):
        z = _per_sample_cross(eps_pred[k], eps_pred[0], pts.eps, score, SCHED)
        se = _se(z)
        assert se < 0.02 * floor  # the tolerance is tight relative to the floor
        diff = float(gap[k] - gap[0])
        assert abs(diff - float(z.sum(1).div(z.shape[1]).sum())) < 1e-9 * floor
        assert abs(diff) < 5 * se, (k, diff, se)
    # the Rao-Blackwellised floor agrees with the plain difference within its standard error
    sd = torch.as_tensor(np.sqrt(1 - SCHED.alpha_bars)).view(-1, 1, 1)
    b = torch.as_tensor(SCHED.betas).view(-1, 1)
    c = -pts.eps / sd
    z = 0.5 * b * (c.square().sum(-1) - score.square().sum(-1))  # gap of the exact model
    assert abs(float(gap[-1]) - floor) < 5 * _se(z)


def test_floor_is_not_fooled_by_a_wrong_weighting(cluster_setup):
    """If J_SM used b/(1-abar) (the DSM weight), the gap would depend on theta by far more."""
    _, pts, score = cluster_setup
    eps_pred = _fields(pts.xt, SCHED)[:2]
    sd = torch.as_tensor(np.sqrt(1 - SCHED.alpha_bars)).view(-1, 1, 1)
    b = torch.as_tensor(SCHED.betas)
    per = (-eps_pred / sd - score).square().sum(-1).mean(-1)
    wrong = 0.5 * (per * b / (1 - torch.as_tensor(SCHED.alpha_bars))).sum(-1)
    gap = j_dsm(eps_pred, pts.eps, SCHED) - wrong
    z = _per_sample_cross(eps_pred[1], eps_pred[0], pts.eps, score, SCHED)
    assert abs(float(gap[1] - gap[0])) > 20 * _se(z)


def test_floor_closed_form_for_gaussian_data():
    """p0 = N(0, s^2 I): p_i = N(0, v_i I), floor = 1/2 sum_i b_i d (1/(1-abar_i) - 1/v_i)."""
    s2, d = 0.3, 2
    rng = np.random.default_rng(6)
    x0 = math.sqrt(s2) * rng.standard_normal((100_000, d))
    pts = noised_points(x0, SCHED, n_draws=1, generator=torch.Generator().manual_seed(8))
    ab = SCHED.alpha_bars
    v = ab * s2 + 1 - ab
    score = -pts.xt / torch.as_tensor(v).view(-1, 1, 1)
    closed = 0.5 * float(np.sum(SCHED.betas * d * (1 / (1 - ab) - 1 / v)))
    eps_pred = _fields(pts.xt, SCHED)
    gap = j_dsm(eps_pred, pts.eps, SCHED) - j_sm(eps_pred, score, SCHED)
    sd = torch.as_tensor(np.sqrt(1 - ab)).view(-1, 1, 1)
    b = torch.as_tensor(SCHED.betas).view(-1, 1)
    c = -pts.eps / sd
    for k in range(eps_pred.shape[0]):
        s_theta = -eps_pred[k] / sd
        z = 0.5 * b * ((s_theta - c).square().sum(-1) - (s_theta - score).square().sum(-1))
        se = _se(z)
        assert se < 0.01 * closed
        assert abs(float(gap[k]) - closed) < 5 * se, (k, float(gap[k]), closed, se)


def test_empirical_score_is_differentiable_and_jacobian_eigs_closed_form():
    from scorew2.lipschitz import jacobian_sym_eigs

    g = torch.Generator().manual_seed(9)
    data = torch.randn(70, 2, generator=g, dtype=torch.float64) * 0.3
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    for abar in (0.9, 0.3):
        eig = empirical_score_jacobian_eigs(x, data, abar)
        auto = jacobian_sym_eigs(lambda y, a=abar: empirical_score(y[0], data, a)[None], x[None])
        torch.testing.assert_close(eig, auto[0], rtol=1e-9, atol=1e-9)
        # the Jacobian of a Gaussian-mixture score is never below -1/(1-abar)
        assert (eig >= -1 / (1 - abar) - 1e-9).all()
    # a single data point: p is Gaussian N(sqrt(abar) x_1, (1-abar) I), J = -I/(1-abar)
    eig = empirical_score_jacobian_eigs(x, data[:1], 0.4)
    torch.testing.assert_close(eig, torch.full((40,), -1 / 0.6, dtype=torch.float64))
