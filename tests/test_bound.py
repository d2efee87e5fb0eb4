"""Tests of scorew2.bound against hand-computed closed forms, and the bound on exact Gaussians."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from scorew2.bound import corollary2_offset, log_bound, log_I, log_intercept, offset
from scorew2.bound_table import OFFSET_FORMS, offset_forms
from scorew2.schedule import make_schedule

torch.set_num_threads(1)


def test_constant_L_and_beta_geometric_sum():
    T, b, L = 25, 0.03, 0.7
    betas = np.full(T, b)
    lip = np.full(T, L)
    np.testing.assert_allclose(log_I(betas, lip), np.arange(1, T + 1) * b * (0.5 + L))
    r = math.exp(2 * b * (0.5 + L))
    want = 0.5 * math.log(2 * b * r * (r**T - 1) / (r - 1))
    got = log_intercept(betas, lip)
    assert isinstance(got, float)
    assert got == pytest.approx(want, rel=1e-13)


def test_L_minus_half_gives_I_one():
    sched = make_schedule("sigmoid", 10, 1e-5, 1e-2)
    lip = np.full(10, -0.5)
    np.testing.assert_allclose(log_I(sched, lip), 0.0, atol=1e-16)
    assert log_intercept(sched.betas, lip) == pytest.approx(
        0.5 * math.log(2 * sched.betas.sum()), rel=1e-14
    )
    # offset = I_T W2 = W2, Corollary 2 offset = exp(-sum b / 2) W2
    assert offset(sched, lip, 0.7) == pytest.approx(0.7, rel=1e-14)
    assert corollary2_offset(sched, lip, 0.7) == pytest.approx(
        0.7 * math.exp(-0.5 * sched.betas.sum()), rel=1e-14
    )


def test_L_zero_intercept():
    b = make_schedule("linear", 40, 1e-3, 0.1).betas
    want = 0.5 * math.log(2 * np.sum(b * np.exp(np.cumsum(b))))
    assert log_intercept(torch.as_tensor(b), torch.zeros(40)) == pytest.approx(want, rel=1e-13)


def test_batched_equals_looped_and_log_bound():
    rng = np.random.default_rng(0)
    b = make_schedule("linear", 12, 1e-3, 0.2).betas
    lip = rng.normal(0.0, 5.0, size=(3, 4, 12))
    got = log_intercept(b, lip)
    assert got.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert got[i, j] == pytest.approx(log_intercept(b, lip[i, j]), rel=1e-14)
    log_j = rng.normal(size=(3, 4))
    off = rng.uniform(0.0, 2.0, size=(3, 4))
    lb = log_bound(log_j, b, lip, off)
    want = np.log(np.exp(got) * np.exp(0.5 * log_j) + off)
    np.testing.assert_allclose(lb, want, rtol=1e-13)
    np.testing.assert_allclose(log_bound(log_j, b, lip), got + 0.5 * log_j, rtol=1e-14)
    # offsets batch as well
    np.testing.assert_allclose(offset(b, lip, 2.0), 2.0 * np.exp(log_I(b, lip)[..., -1]))
    np.testing.assert_allclose(
        corollary2_offset(b, lip, 2.0), 2.0 * np.exp((b * lip).sum(-1)), rtol=1e-14
    )


def test_log_bound_does_not_overflow():
    b = np.full(5, 0.1)
    lip = np.full(5, 300.0)  # I_T about e^150
    value = log_bound(4000.0, b, lip, offset=1.0)
    assert value == pytest.approx(log_intercept(b, lip) + 2000.0, rel=1e-15)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: log_I(np.full(5, 0.1), np.zeros(4)), "lipschitz"),
        (lambda: log_intercept(np.full(5, 0.1), np.zeros((2, 4))), "lipschitz"),
        (lambda: log_intercept(np.full(3, 0.1), [0.0, np.nan, 1.0]), "lipschitz"),
        (lambda: log_intercept([0.1, np.nan], [0.0, 0.0]), "betas"),
        (lambda: log_intercept([[0.1, 0.1]], [0.0, 0.0]), "betas"),
        (lambda: log_bound(np.nan, [0.1], [0.0]), "log_jdsm"),
        (lambda: log_bound(0.0, [0.1], [0.0], offset=-1.0), "offset"),
        (lambda: offset([0.1], [0.0], np.nan), "w2_T"),
        (lambda: corollary2_offset([0.1], [0.0], -1.0), "w2_p0_prior"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------- the whole bound on exact Gaussians
#
# p0 = N(0, s2 I_d). Forward: p_i = N(0, v_i I), v_i = abar_i s2 + 1 - abar_i, score -x / v_i.
# Model: s_theta(x, i) = -x / v_i + c x (a known linear error), eps_theta = -sqrt(1-abar) s_theta.
# Ancestral sampler from q_T = p_T:  x <- (x + b_i s_theta(x, i)) / sqrt(a_i) + sqrt(b_i) z,
# a linear map plus Gaussian noise, so q_0 = N(0, w I) with w propagated in closed form.
# W2(N(0, s2 I), N(0, w I)) = sqrt(d) |sqrt(s2) - sqrt(w)|.
# J_SM = 1/2 sum_i b_i c^2 d v_i; J_DSM = J_SM + 1/2 sum_i b_i d (1/(1-abar_i) - 1/v_i);
# the model score is affine with symmetric Jacobian (c - 1/v_i) I, so L_s(i) = c - 1/v_i exactly.


def _gaussian_case(sched, s2, c, d=2):
    b, a, ab = sched.betas, sched.alphas, sched.alpha_bars
    v = ab * s2 + 1 - ab
    w = v[-1]
    for i in range(sched.T - 1, -1, -1):
        k = (1 + b[i] * (c - 1 / v[i])) / math.sqrt(a[i])
        w = k * k * w + b[i]
    w2 = math.sqrt(d) * abs(math.sqrt(s2) - math.sqrt(w))
    j_sm = 0.5 * np.sum(b * c * c * d * v)
    j_dsm = j_sm + 0.5 * np.sum(b * d * (1 / (1 - ab) - 1 / v))
    return w, w2, j_sm, j_dsm, c - 1 / v


SCHEDULES = [
    make_schedule("sigmoid", 10, 1e-5, 1e-2),
    make_schedule("linear", 100, 1e-4, 0.05),
    make_schedule("linear", 200, 1e-4, 0.2),
]


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: f"T{s.T}")
@pytest.mark.parametrize("s2", [0.1, 1.0, 4.0])
@pytest.mark.parametrize("c", [-3.0, -1.0, 0.0, 0.1, 1.0, 3.0])
def test_bound_holds_for_exact_gaussian_case(sched, s2, c):
    _, w2, _, j_dsm, lip = _gaussian_case(sched, s2, c)
    # q_T = p_T: no offset (Corollary 1 with Corollary 3)
    assert math.log(w2 + 1e-300) <= log_bound(math.log(j_dsm), sched, lip)


def test_gaussian_sampler_variance_by_simulation():
    """The closed-form variance of q_0 matches a simulated ancestral sampler."""
    sched, s2, c, d = SCHEDULES[1], 0.3, 0.5, 2
    w, *_ = _gaussian_case(sched, s2, c, d)
    g = torch.Generator().manual_seed(0)
    ab = sched.alpha_bars
    v = ab * s2 + 1 - ab
    n = 200_000
    x = math.sqrt(v[-1]) * torch.randn(n, d, generator=g, dtype=torch.float64)
    for i in range(sched.T - 1, -1, -1):
        eps_theta = -math.sqrt(1 - ab[i]) * (-x / v[i] + c * x)
        x = (x - sched.betas[i] / math.sqrt(1 - ab[i]) * eps_theta) / math.sqrt(sched.alphas[i])
        x = x + math.sqrt(sched.betas[i]) * torch.randn(n, d, generator=g, dtype=torch.float64)
    var = float(x.square().mean())
    se = w * math.sqrt(2 / (n * d))
    assert abs(var - w) < 5 * se


def test_jsm_form_is_not_a_bound_for_the_discrete_sampler():
    """Documented limit: the sampler's discretisation error is not in J_SM.

    With the exact score (c = 0) J_SM = 0, yet q_0 != p_0 for the discrete ancestral sampler
    when s2 != 1 (each step's variance is off by b_i^2 (1/v_i - 1) / a_i). Only the DSM floor
    in J_DSM keeps the paper's bound above W2 in the cases above.
    """
    sched = SCHEDULES[0]
    _, w2, j_sm, _, _ = _gaussian_case(sched, 0.1, 0.0)
    assert j_sm == 0.0 and w2 > 1e-3
    _, w2_one, *_ = _gaussian_case(sched, 1.0, 0.0)  # p_i = N(0, I) for all i: exact
    assert w2_one < 1e-12


def test_gaussian_bound_is_tight_enough_to_test_something():
    """Over the grid above, the bound comes within a factor 2.5 of W2 somewhere: a constant
    that is off by e (say, a lost b/2 in log I) would make the test above fail."""
    ratios = []
    for sched in SCHEDULES:
        for s2 in (0.1, 1.0, 4.0):
            for c in (-3.0, -1.0, 0.1, 1.0, 3.0):
                _, w2, _, j_dsm, lip = _gaussian_case(sched, s2, c)
                ratios.append(log_bound(math.log(j_dsm), sched, lip) - math.log(w2))
    assert min(ratios) < math.log(2.5)


def test_offset_is_zero_for_q_T_equal_p_T_even_with_huge_lipschitz() -> None:
    betas = np.full(10, 0.01)
    huge = np.full((2, 10), 1e6)  # maximise-phase networks: I_T overflows float64
    out = offset(betas, huge, np.array([0.0, 0.5]))
    assert out[0] == 0.0 and out[1] == np.inf
    assert np.isinf(log_bound(0.0, betas, huge[1], out[1]))


def test_offset_forms_closed_form_with_constant_L():
    # L_i = c: I_T = exp(sum b (1/2 + c)); Corollary 2: exp(c sum b) W2(p0, N);
    # contraction: I_T sqrt(abar_T) W2(p0, N); NaN prior (q_T = p_T): both NaN
    sched = make_schedule("sigmoid", 12, 1e-4, 0.1)
    c, w2_T, prior = 0.3, np.array([0.2, 0.4]), np.array([1.5, np.nan])
    forms = offset_forms(sched, np.full((2, sched.T), c), w2_T, prior)
    I_T = math.exp(sched.betas.sum() * (0.5 + c))
    np.testing.assert_allclose(forms["offset"], I_T * w2_T, rtol=1e-13)
    want2 = math.exp(c * sched.betas.sum()) * 1.5
    assert forms["corollary2_offset"][0] == pytest.approx(want2, rel=1e-13)
    want3 = I_T * math.sqrt(sched.alpha_bars[-1]) * 1.5
    assert forms["contraction_offset"][0] == pytest.approx(want3, rel=1e-13)
    assert np.isnan(forms["corollary2_offset"][1]) and np.isnan(forms["contraction_offset"][1])
    assert list(forms) == list(OFFSET_FORMS)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: log_intercept("x", [0.0]), r"^betas: cannot be read as an array of numbers"),
        (lambda: log_intercept([0.1], "x"), r"^lipschitz: cannot be read as an array"),
        (lambda: log_bound("x", [0.1], [0.0]), r"^log_jdsm: cannot be read as an array"),
        (lambda: log_bound(0.0, [0.1], [0.0], "x"), r"^offset: cannot be read as an array"),
        (lambda: offset([0.1], [0.0], "x"), r"^w2_T: cannot be read as an array"),
        (lambda: corollary2_offset([0.1], [0.0], "x"), r"^w2_p0_prior: cannot be read as"),
        (lambda: log_intercept([0.1, np.inf], [0.0, 0.0]), r"^betas: contains NaN or infinite"),
        (lambda: log_intercept([0.1, 0.0], [0.0, 0.0]), r"^betas: every beta must be > 0$"),
        (lambda: log_intercept([0.1], [np.nan]), r"^lipschitz: contains NaN or infinite values$"),
        (lambda: log_bound(np.nan, [0.1], [0.0]), r"^log_jdsm: contains NaN$"),
        (lambda: log_bound(0.0, [0.1], [0.0], np.nan), r"^offset: must be >= 0 \(and not NaN\)$"),
        (lambda: offset([0.1], [0.0], -1.0), r"^w2_T: must be >= 0 \(and not NaN\)$"),
        (lambda: corollary2_offset([0.1], [0.0], np.nan), r"^w2_p0_prior: must be >= 0 \(and"
         r" not NaN\)$"),
    ],
)  # fmt: skip
def test_bad_input_messages_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_zero_and_huge_values_give_exact_results_without_warnings():
    b, huge = np.full(4, 0.5), np.full(4, 2000.0)  # exp(sum b L) = e^4000 overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) and exp overflow are expected, never reported
        assert log_bound(0.0, b, np.zeros(4), offset=0.0) == log_intercept(b, np.zeros(4))
        assert offset(b, huge, 0.0) == 0.0 and offset(b, huge, 1.0) == math.inf
        assert corollary2_offset(b, huge, 0.0) == 0.0  # a prior W2 of 0 is allowed
        assert corollary2_offset(b, huge, 1.0) == math.inf


def test_scalar_results_are_python_floats_and_batches_arrays():
    b = np.full(3, 0.1)
    assert type(log_intercept(b, np.zeros(3))) is float
    assert type(log_bound(1.0, b, np.zeros(3))) is float
    assert type(offset(b, np.zeros(3), 0.5)) is float
    assert type(corollary2_offset(b, np.zeros(3), 0.5)) is float
    batch = log_intercept(b, np.zeros((2, 3)))
    assert isinstance(batch, np.ndarray) and batch.shape == (2,)
