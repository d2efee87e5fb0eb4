"""Tests of scorew2.wasserstein: exact W2 against assignment, POT and closed forms."""

from __future__ import annotations

import warnings
from itertools import pairwise
from pathlib import Path

import numpy as np
import ot
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from scorew2 import wasserstein as W
from scorew2.wasserstein import w2, w2_certified, w2_emd, w2_many, w2_many_certified

#: mutmut (tests/mutation) wraps every mutated function in a trampoline, one more stack frame
#: per call, so there a warning's stacklevel cannot name the caller's file; the plain suite
#: checks it (the stacklevel mutants are listed in tests/mutation/equivalent.txt).
TRAMPOLINED = Path(W.w2.__code__.co_filename).name == "trampoline.py"


def _warned_here(rec) -> bool:
    """Every recorded warning names this file (the caller's line), or mutmut runs this."""
    return TRAMPOLINED or {Path(w.filename).name for w in rec} == {Path(__file__).name}


torch.set_num_threads(1)

# Problems larger than this many pairs take the sparse certified path (not the dense one).
SPARSE_N = 1600
assert SPARSE_N**2 > W._DENSE_MAX_PAIRS


def _assignment_w2(x: np.ndarray, y: np.ndarray) -> float:
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    return float(np.sqrt(cost[r, c].mean()))


def _clusters(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]])
    return centres[rng.integers(0, 4, n)] + 0.0125 * rng.standard_normal((n, 2))


def _noisy_copy(x: np.ndarray, rng: np.random.Generator, outliers: float = 0.02) -> np.ndarray:
    """Pipeline-shaped 'generated samples': shuffled, jittered, with uniform outliers."""
    y = x[rng.permutation(len(x))] + 0.01 * rng.standard_normal(x.shape)
    k = int(outliers * len(x))
    y[:k] = rng.uniform(-1.0, 1.0, (k, x.shape[1]))
    return y


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, np.pi, n)
    upper = (rng.random(n) < 0.5)[:, None]
    pts = np.where(upper, np.c_[np.cos(t), np.sin(t)], np.c_[1.0 - np.cos(t), 0.5 - np.sin(t)])
    return 0.5 * (pts + 0.1 * rng.standard_normal((n, 2)))


@pytest.mark.parametrize(("n", "seed"), [(50, 0), (400, 1), (SPARSE_N, 2)])
def test_equals_linear_sum_assignment(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 2)), rng.uniform(-1, 2, (n, 2))
    ref = _assignment_w2(x, y)
    assert w2(x, y) == pytest.approx(ref, rel=1e-9)
    assert w2_emd(x, y) == pytest.approx(ref, rel=1e-9)


def test_dense_and_sparse_paths_are_both_exercised() -> None:
    rng = np.random.default_rng(3)
    small = w2_certified(rng.standard_normal((30, 2)), rng.standard_normal((40, 2)))
    assert small.method == "dense" and small.n_levels == 1
    big = w2_certified(rng.standard_normal((SPARSE_N, 2)), rng.standard_normal((SPARSE_N, 2)))
    assert big.method == "sparse" and big.n_levels >= 2
    assert big.n_candidate_pairs < SPARSE_N**2 / 10
    assert small.gap_rtol == big.gap_rtol == W._GAP_RTOL == 1e-10


@pytest.mark.parametrize("d", [4, 16, 32])
def test_high_dimension_sparse_path_matches_emd(d: int) -> None:
    """d > log2(n / 8): cutting every axis in two would leave one point per cell (and used to
    recurse without end); the coarse level cuts only the axes of largest spread."""
    rng = np.random.default_rng(d)
    x, y = rng.standard_normal((SPARSE_N, d)), 1.1 * rng.standard_normal((SPARSE_N, d))
    res = w2_certified(x, y)
    assert res.method == "sparse" and res.n_levels >= 2
    assert res.value == pytest.approx(w2_emd(x, y), rel=1e-9)


def test_coarsen_reduces_in_any_dimension() -> None:
    rng = np.random.default_rng(0)
    for d in (2, 8, 9, 64):
        x = rng.standard_normal((2000, d))
        labels, cent, mass = W._coarsen(x, np.full(2000, 1 / 2000), 8)
        assert 2000 / 16 <= len(cent) <= 2000 / 4  # cells of about 8 points
        assert mass.sum() == pytest.approx(1.0) and labels.max() + 1 == len(cent)


def test_pipeline_shaped_clusters_with_outliers_certificate_adds_pairs() -> None:
    rng = np.random.default_rng(4)
    x = _clusters(2000, rng)
    y = _noisy_copy(_clusters(2000, rng), rng)
    res = w2_certified(x, y)
    ref = w2_emd(x, y)
    assert res.value == pytest.approx(ref, rel=1e-9)
    # the first candidate set (coarse plan + kNN) did not contain the optimum: the
    # certificate loop had to add violated pairs and re-solve
    assert res.n_added_pairs > 0 and res.n_rounds > 1
    # certified bounds bracket the optimum tightly
    assert res.lower_bound <= res.cost + 1e-15
    assert res.gap <= 1e-10 * res.cost + 1e-12
    assert res.min_reduced_cost >= -1e-9


def test_pipeline_shaped_moons_with_outliers() -> None:
    rng = np.random.default_rng(5)
    x = _moons(1800, rng)
    y = _moons(1800, rng) + 0.02 * rng.standard_normal((1800, 2))
    y[:36] = rng.uniform(-1.0, 1.5, (36, 2))
    res = w2_certified(x, y)
    assert res.method == "sparse"
    assert res.value == pytest.approx(w2_emd(x, y), rel=1e-9)
    assert res.n_added_pairs > 0


def test_gaussians_closed_form() -> None:
    """W2^2(N(m1, s1^2 I), N(m2, s2^2 I)) = |m1 - m2|^2 + d (s1 - s2)^2, within sampling error."""
    rng = np.random.default_rng(6)
    m1, m2, s1, s2, n = np.array([0.0, 0.0]), np.array([3.0, 4.0]), 1.0, 0.5, SPARSE_N
    x = m1 + s1 * rng.standard_normal((n, 2))
    y = m2 + s2 * rng.standard_normal((n, 2))
    exact = np.sqrt(np.sum((m1 - m2) ** 2) + 2 * (s1 - s2) ** 2)
    assert w2(x, y) == pytest.approx(exact, rel=0.02)
    # with the sample means the mean term is exact; what remains is the shape term
    shape = w2(x - x.mean(0), y - y.mean(0))
    assert shape == pytest.approx(np.sqrt(2) * (s1 - s2), rel=0.1)


def test_translate_gives_norm_of_shift() -> None:
    rng = np.random.default_rng(7)
    x = _clusters(SPARSE_N, rng)
    shift = np.array([0.3, -0.2])
    assert w2(x, x + shift) == pytest.approx(np.linalg.norm(shift), rel=1e-9)
    assert w2(x, x) == pytest.approx(0.0, abs=1e-7)


def test_unequal_sizes_duplicate_set_is_zero() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1200, 2))
    res = w2_certified(x, np.concatenate([x, x[::-1]]))  # 1200 x 2400: sparse path
    assert res.method == "sparse"
    assert res.value == pytest.approx(0.0, abs=1e-6)
    assert w2(x[:5], np.concatenate([x[:5]] * 3)) == pytest.approx(0.0, abs=1e-7)


def test_unequal_sizes_small_case_against_weighted_emd() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)) + 1.0
    ref = ot.emd2(np.full(7, 1 / 7), np.full(5, 1 / 5), ot.dist(x, y))
    assert w2(x, y) ** 2 == pytest.approx(ref, rel=1e-12)
    assert w2_emd(x, y) ** 2 == pytest.approx(ref, rel=1e-12)


def test_unequal_sizes_sparse_path_matches_emd() -> None:
    rng = np.random.default_rng(10)
    x = _clusters(1700, rng)
    y = _noisy_copy(_clusters(1400, rng), rng)
    res = w2_certified(x, y)
    assert res.method == "sparse"
    assert res.value == pytest.approx(w2_emd(x, y), rel=1e-9)


def test_accepts_torch_tensors() -> None:
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((20, 2)), rng.standard_normal((30, 2))
    assert w2(torch.from_numpy(x), torch.from_numpy(y).float()) == pytest.approx(
        w2(x, y.astype(np.float32)), rel=1e-12
    )


@pytest.mark.parametrize("fn", [w2, w2_emd, w2_certified])
@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros(5), np.zeros((5, 2)), r"x: expected shape \(n, d\)"),
        (np.zeros((5, 2)), np.zeros((5, 2, 1)), r"y: expected shape \(n, d\)"),
        (np.zeros((0, 2)), np.zeros((5, 2)), "x: empty point set"),
        (np.zeros((5, 2)), np.zeros((0, 2)), "y: empty point set"),
        (np.array([[0.0, np.nan]]), np.zeros((5, 2)), "x: 1 point.*NaN or infinite"),
        (np.zeros((5, 2)), np.array([[np.inf, 0.0]]), "y: 1 point.*NaN or infinite"),
        (np.zeros((5, 2)), np.zeros((5, 3)), "y: expected 2 coordinates"),
        ([["a", "b"]], np.zeros((5, 2)), "x: cannot be read"),
    ],
)
def test_bad_input_raises(fn, x, y, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(x, y)


@pytest.mark.parametrize("fn", [w2, w2_emd])
@pytest.mark.parametrize("n", [40, SPARSE_N])
def test_iteration_limit_never_returns_unconverged(monkeypatch, fn, n: int) -> None:
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    monkeypatch.setattr(W, "_iteration_limits", lambda n_arcs: (2,))
    with pytest.raises(RuntimeError, match=r"iteration limit reached|numItermax"):
        if fn is w2:  # the fast path fails, warns, and its dense fallback fails too
            with pytest.warns(RuntimeWarning, match="falling back"):
                fn(x, y)
        else:
            fn(x, y)


def test_w2_falls_back_to_emd_when_certificate_fails(monkeypatch) -> None:
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((60, 2)), rng.standard_normal((50, 2))

    def broken(x, y):
        raise RuntimeError("exact W2: certificate loop did not close")

    monkeypatch.setattr(W, "w2_certified", broken)
    with pytest.warns(RuntimeWarning, match="falling back to dense w2_emd"):
        assert w2(x, y) == pytest.approx(w2_emd(x, y), rel=1e-12)


@pytest.mark.parametrize("fn", [w2, w2_emd])
def test_iteration_limit_is_raised_and_result_exact(monkeypatch, fn) -> None:
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    ref = _assignment_w2(x, y)
    calls = []

    def limits(n_arcs: int) -> tuple[int, ...]:
        calls.append(n_arcs)
        return (2, 10**8)  # the first try cannot converge; the retry must

    monkeypatch.setattr(W, "_iteration_limits", limits)
    assert fn(x, y) == pytest.approx(ref, rel=1e-9)
    assert calls


def test_default_limit_grows_with_problem() -> None:
    first, retry = W._iteration_limits(8000 * 8000)
    assert first >= 8000 * 8000 and retry > first
    assert W._iteration_limits(10)[0] >= 100_000


# --------------------------------------------------------------------------- w2_many


def _converging_sequence(n_ref: int, m: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference clusters and k sample sets moving from a broad noisy cloud to the clusters'
    shape, with common noise (sample j is the same draw in every set) and 2% outliers."""
    rng = np.random.default_rng(seed)
    ref = _clusters(n_ref, rng)
    base, noise = _clusters(m, rng), rng.standard_normal((m, 2))
    scales = np.geomspace(0.5, 0.01, k)[:, None, None]
    samples = base + scales * noise + 0.002 * rng.standard_normal((k, m, 2))
    n_out = m // 50
    samples[:, :n_out] = rng.uniform(-1.0, 1.0, (n_out, 2))
    return ref, samples


def test_w2_many_equals_emd_on_converging_sequence() -> None:
    ref, samples = _converging_sequence(1000, 1000, 8, seed=20)
    res = w2_many_certified(ref, samples)
    expected = np.array([w2_emd(ref, q) for q in samples])
    np.testing.assert_allclose([r.value for r in res], expected, rtol=1e-9)
    np.testing.assert_allclose(w2_many(torch.from_numpy(ref), samples), expected, rtol=1e-9)
    # the first problem is solved cold, the rest warm-started from their predecessor
    assert res[0].method == "dense" and res[0].warm_fallback is False
    assert all(r.method == "warm" and r.n_levels == 1 for r in res[1:])
    for r in res:
        assert r.lower_bound <= r.cost + 1e-15
        assert r.gap <= 1e-10 * r.cost + 1e-12
        assert r.min_reduced_cost >= -1e-9


def test_w2_many_bad_warm_start_is_repaired_or_falls_back() -> None:
    """Shuffling a set's points makes the previous plan, mapped by sample index, useless."""
    ref, samples = _converging_sequence(700, 800, 4, seed=21)
    rng = np.random.default_rng(22)
    samples[2] = samples[2][rng.permutation(800)]  # model 2 is model 1's neighbour shuffled
    samples[3] = samples[3][rng.permutation(800)]
    res = w2_many_certified(ref, samples)
    expected = [w2_emd(ref, q) for q in samples]
    np.testing.assert_allclose([r.value for r in res], expected, rtol=1e-9)
    # the shuffled problems could not be closed by the warm start's first candidate set: the
    # loop added violated pairs (found by the all-pairs check) or gave up for the cold path
    for r in res[2:]:
        assert r.warm_fallback or (r.n_added_by_full_check > 0 and r.n_rounds > 1)


def test_w2_many_falls_back_to_cold_path(monkeypatch) -> None:
    ref, samples = _converging_sequence(300, 300, 3, seed=23)
    samples[1] = samples[1][::-1].copy()  # reversed sample order: a poor warm start
    monkeypatch.setattr(W, "_WARM_MAX_ROUNDS", 1)
    res = w2_many_certified(ref, samples)
    assert res[1].warm_fallback and res[1].method == "dense"
    np.testing.assert_allclose([r.value for r in res], [w2_emd(ref, q) for q in samples], rtol=1e-9)


def test_w2_many_cold_multiscale_solve_is_sparse(monkeypatch) -> None:
    """Above the dense size the cold path is the multiscale one (method "sparse", 2 or more
    levels); the warm starts after it are one-level solves."""
    ref, samples = _converging_sequence(300, 300, 2, seed=27)
    monkeypatch.setattr(W, "_DENSE_MAX_PAIRS", 100 * 100)
    res = w2_many_certified(ref, samples)
    assert res[0].method == "sparse" and res[0].n_levels >= 2 and res[0].warm_fallback is False
    assert res[1].method == "warm" and res[1].n_levels == 1
    np.testing.assert_allclose([r.value for r in res], [w2_emd(ref, q) for q in samples], rtol=1e-9)


def test_w2_many_order_permutes_solving_not_output() -> None:
    ref, samples = _converging_sequence(300, 300, 4, seed=24)
    forward = w2_many_certified(ref, samples)
    backward = w2_many_certified(ref, samples, order=[3, 2, 1, 0])
    assert backward[3].method == "dense" and forward[0].method == "dense"
    np.testing.assert_allclose([r.value for r in backward], [r.value for r in forward], rtol=1e-9)


@pytest.mark.parametrize(
    ("ref", "samples", "order", "match"),
    [
        (np.zeros((5, 2)), np.zeros((5, 2)), None, r"samples: expected shape \(K, m, d\)"),
        (np.zeros((5, 2)), np.zeros((2, 5, 3)), None, "samples: expected 2 coordinates"),
        (np.zeros((5, 2)), np.zeros((0, 5, 2)), None, "samples: empty"),
        (np.zeros((5, 2)), np.zeros((2, 0, 2)), None, "samples: empty"),
        (np.zeros((5, 2)), "points", None, "samples: cannot be read"),
        (np.zeros((5, 2)), np.zeros((2, 5, 2)), ["a", "b"], "order: cannot be read"),
        (
            np.zeros((5, 2)),
            np.stack([np.full((5, 2), np.inf), np.zeros((5, 2)), np.full((5, 2), np.nan)]),
            None,
            "samples: 2 model.*NaN or infinite.*index 0",
        ),
        (
            np.zeros((5, 2)),
            np.stack([np.zeros((5, 2)), np.full((5, 2), np.nan)]),
            None,
            "samples: 1 model.*NaN or infinite.*index 1",
        ),
        (np.array([[np.nan, 0.0]]), np.zeros((2, 5, 2)), None, "ref: 1 point.*NaN"),
        (np.zeros(5), np.zeros((2, 5, 2)), None, r"ref: expected shape \(n, d\)"),
        (np.zeros((5, 2)), np.zeros((2, 5, 2)), [0, 0], "order: expected a permutation"),
        (np.zeros((5, 2)), np.zeros((2, 5, 2)), [0, 1, 2], "order: expected a permutation"),
    ],
)
def test_w2_many_bad_input_raises(ref, samples, order, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        w2_many(ref, samples, order)


def test_w2_many_never_returns_unconverged(monkeypatch) -> None:
    ref, samples = _converging_sequence(40, 40, 3, seed=25)
    monkeypatch.setattr(W, "_iteration_limits", lambda n_arcs: (2,))
    with pytest.raises(RuntimeError, match=r"w2_emd: .*numItermax=2"):
        # the cold path fails, warns, and its w2_emd fallback fails too
        with pytest.warns(RuntimeWarning, match="numItermax=2.*falling back"):
            w2_many(ref, samples)


def test_w2_many_falls_back_to_emd_when_no_certificate_closes(monkeypatch) -> None:
    ref, samples = _converging_sequence(60, 50, 3, seed=26)

    def broken(x, y, a, b):
        raise RuntimeError("exact W2: optimality not proven")

    monkeypatch.setattr(W, "_solve", broken)
    with pytest.warns(RuntimeWarning, match=r"samples\[\d\].*falling back to dense w2_emd") as rec:
        res = w2_many_certified(ref, samples)
    assert len(rec) == 3  # the next problem starts cold again
    assert _warned_here(rec)  # the caller's line
    np.testing.assert_allclose(
        [r.value for r in res], [w2_emd(ref, q) for q in samples], rtol=1e-12
    )
    for r in res:  # a w2_emd value: no certificate, nothing solved sparsely
        assert r.method == "emd" and r.warm_fallback is False
        assert r.cost == pytest.approx(r.value**2, rel=1e-12)
        assert np.isnan([r.lower_bound, r.gap, r.min_reduced_cost, r.gap_rtol]).all()
        assert (r.n_rounds, r.n_added_pairs, r.n_added_by_full_check, r.n_levels) == (0, 0, 0, 1)
        assert r.n_candidate_pairs == 60 * 50


def test_w2_warns_at_its_caller_when_it_falls_back(monkeypatch) -> None:
    x, y = _clusters(30, np.random.default_rng(5)), _clusters(20, np.random.default_rng(6))

    def broken(x, y):
        raise RuntimeError("exact W2: optimality not proven")

    monkeypatch.setattr(W, "w2_certified", broken)
    with pytest.warns(RuntimeWarning, match="falling back to dense w2_emd") as rec:
        value = W.w2(x, y)
    assert len(rec) == 1 and _warned_here(rec)
    assert value == w2_emd(x, y)


def test_w2_many_one_point_sets_are_the_mean_squared_distance() -> None:
    """m = 1 (or n = 1): all mass moves to the one point, W2^2 = mean_i |x_i - y|^2; the warm
    start then has no candidate pair off the plan (it crashed there before)."""
    ref = _clusters(40, np.random.default_rng(7))
    samples = np.array([[[0.3, -0.2]], [[1.0, 0.5]]])
    expect = [np.sqrt(((ref - s[0]) ** 2).sum(1).mean()) for s in samples]
    np.testing.assert_allclose(w2_many(ref, samples), expect, rtol=1e-12)
    clouds = np.stack([ref, ref + 0.1])
    expect = [np.sqrt(((c - samples[0, 0]) ** 2).sum(1).mean()) for c in clouds]
    np.testing.assert_allclose(w2_many(samples[0], clouds), expect, rtol=1e-12)


# --------------------------------------------------------------------------- the solver's frame


def test_frame_centres_and_scales_by_a_power_of_two() -> None:
    """_frame: f (x - c), f (y - c) with c the midpoint of the means and f a power of two that
    brings R = max squared norm into [1, 4) when R < 1, and 1 otherwise (data of the pipeline's
    scale are left exactly as they were)."""
    rng = np.random.default_rng(32)
    x, y = rng.standard_normal((50, 3)) + 5.0, rng.standard_normal((40, 3)) - 1.0
    for c in (1.0, 0.3, 1e-3, 2.0**-40):
        cx, cy = c * x, c * y
        centre = 0.5 * (cx.mean(axis=0) + cy.mean(axis=0))
        fx, fy, f = W._frame(cx, cy)
        r = max(((cx - centre) ** 2).sum(1).max(), ((cy - centre) ** 2).sum(1).max())
        if r >= 1.0:
            assert f == 1.0
        else:
            assert np.log2(f) == np.round(np.log2(f)) and 1.0 <= f**2 * r < 4.0
        np.testing.assert_array_equal(fx, f * (cx - centre))
        np.testing.assert_array_equal(fy, f * (cy - centre))
    assert W._frame(np.zeros((3, 2)), np.zeros((2, 2)))[2] == 1.0  # R = 0: nothing to scale
    assert W._frame(np.array([[0.5, 0.0]]), np.array([[-0.5, 0.0]]))[2] == 2.0  # R = 1/4


@pytest.mark.parametrize("c", [2.0**-30, 1e-3, 0.03, 1e3])
def test_scale_equivariant_and_certified_at_every_scale(c: float) -> None:
    """W2(c x, c y) = c W2(x, y), each value certified. Without the frame's factor, sets with
    max |x|^2 below about 4e-4 failed the certificate (POT's simplex stops on an absolute
    reduced-cost tolerance) and w2 fell back to the uncertified w2_emd."""
    rng = np.random.default_rng(30)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2)) + 0.5
    base = w2_certified(x, y)
    res = w2_certified(c * x, c * y)
    assert res.value == pytest.approx(c * base.value, rel=1e-12)
    assert res.cost == pytest.approx(c**2 * base.cost, rel=1e-12)
    assert res.lower_bound <= res.cost and res.gap <= 1e-9 * res.cost
    assert res.min_reduced_cost >= -1e-9 * res.cost
    assert w2_emd(c * x, c * y) == pytest.approx(c * base.value, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        assert w2(c * x, c * y) == res.value


def test_small_scale_sparse_path_and_far_offset() -> None:
    rng = np.random.default_rng(31)
    x = _clusters(SPARSE_N, rng)
    y = _noisy_copy(x, rng)
    base = w2_certified(x, y)
    small = w2_certified(1e-3 * x, 1e-3 * y)
    assert small.method == "sparse" and small.value == pytest.approx(1e-3 * base.value, rel=1e-12)
    # far from the origin: the frame's centring keeps the all-pairs check accurate
    off = np.array([1e4, -3e4])
    xs, ys = 1e-3 * x[:300] + off, 1e-3 * y[:300] + off
    assert w2_certified(xs, ys).value == pytest.approx(_assignment_w2(xs, ys), rel=1e-9)


def test_w2_many_across_scales_warm_starts_rescaled() -> None:
    """A sequence whose sets change scale by powers of ten: the frame's factor changes from
    problem to problem, the previous duals are rescaled with it, every value is certified."""
    rng = np.random.default_rng(33)
    ref = 1e-3 * _clusters(300, rng)
    base = _clusters(300, rng)
    samples = np.stack([s * base for s in (1e-3, 1.3e-3, 1e-1, 1.0, 2e-3)])
    res = w2_many_certified(ref, samples)
    np.testing.assert_allclose(
        [r.value for r in res], [w2_certified(ref, q).value for q in samples], rtol=1e-9
    )
    assert all(r.gap <= 1e-9 * r.cost for r in res)


# --------------------------------------------------------------------------- solver parts
# Each against its own specification (the docstrings); found missing by mutation testing.


def test_coarsen_cells_are_equal_count_slabs_with_weighted_centroids() -> None:
    """2-D, 72 points in cells of 8: 9 cells, 3 equal-count slabs along x, each cut into 3
    along y; centroids are the w-weighted means, masses the sums of w."""
    rng = np.random.default_rng(40)
    x = rng.standard_normal((72, 2))
    w = rng.uniform(0.5, 2.0, 72)
    labels, cent, mass = W._coarsen(x, w, 8)
    assert len(cent) == 9 and np.array_equal(np.bincount(labels), np.full(9, 8))
    slab_x = np.argsort(np.argsort(x[:, 0])) // 24
    for c in range(9):  # every cell lies in one x-slab; the slab's cells are disjoint in y
        assert len(set(slab_x[labels == c])) == 1
    for s in range(3):
        cells = sorted(set(labels[slab_x == s]), key=lambda c: x[labels == c, 1].min())
        assert len(cells) == 3
        for lo, hi in pairwise(cells):
            assert x[labels == lo, 1].max() < x[labels == hi, 1].min()
    np.testing.assert_allclose(mass, np.bincount(labels, weights=w), rtol=1e-14)
    for c in range(9):
        sel = labels == c
        np.testing.assert_allclose(cent[c], w[sel] @ x[sel] / w[sel].sum(), rtol=1e-12)


@pytest.mark.parametrize("n", [70, 71])
def test_coarsen_unequal_slabs_still_give_equal_count_cells(n: int) -> None:
    """n not a multiple of the 9 cells: the slabs along x hold 24 or 23 points, and each is
    cut by rank within it, so every cell holds 7 or 8 points (never a remnant)."""
    rng = np.random.default_rng(40)
    x = rng.standard_normal((n, 2))
    labels, cent, _ = W._coarsen(x, np.full(n, 1 / n), 8)
    sizes = np.bincount(labels)
    assert len(cent) == 9 and sizes.min() >= 7 and sizes.max() <= 8


def test_coarsen_high_dimension_cuts_the_axes_of_largest_spread() -> None:
    """d = 6 > log2(64 / 8): the cuts use the 3 axes of largest variance (1, 3, 5 here), each
    halved: 8 cells of 8 that do not depend on the other coordinates."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal((64, 6)) * np.array([1.0, 3.0, 0.1, 2.0, 0.2, 4.0])
    labels = W._coarsen(x, np.full(64, 1 / 64), 8)[0]
    assert np.array_equal(np.bincount(labels), np.full(8, 8))
    other = x.copy()
    other[:, [0, 2, 4]] = 0.01 * rng.standard_normal((64, 3))
    assert np.array_equal(W._coarsen(other, np.full(64, 1 / 64), 8)[0], labels)
    half = np.argsort(np.argsort(x[:, 1])) // 32  # the first cut: the median along axis 1
    assert all(len(set(half[labels == c])) == 1 for c in range(8))


def test_coarsen_two_cells_cut_the_widest_axis_at_its_median() -> None:
    """16 points in cells of 8 (d = 3 > log2 2): one cut, along the axis of largest spread."""
    rng = np.random.default_rng(42)
    x = rng.standard_normal((16, 3)) * np.array([1.0, 0.5, 2.0])
    labels = W._coarsen(x, np.full(16, 1 / 16), 8)[0]
    assert np.array_equal(labels, (np.argsort(np.argsort(x[:, 2])) >= 8).astype(np.int64))


def test_members_lists_each_cell_including_empty_ones() -> None:
    labels = np.array([2, 0, 2, 1, 0, 2])
    order, sizes, starts = W._members(labels, 4)  # cell 3 is empty
    assert sizes.tolist() == [2, 1, 3, 0] and starts.tolist() == [0, 2, 3, 6]
    for c in range(4):
        assert sorted(order[starts[c] :][: sizes[c]]) == np.flatnonzero(labels == c).tolist()


def test_refine_arcs_are_all_pairs_between_linked_cells() -> None:
    rng = np.random.default_rng(43)
    lx, ly = rng.integers(0, 5, 40), rng.integers(0, 4, 30)
    lx[:5], ly[:4] = np.arange(5), np.arange(4)  # every cell occupied
    cr, cc = np.array([0, 0, 3, 4, 2]), np.array([1, 3, 3, 0, 2])
    ri, rj = W._refine_arcs(lx, ly, 5, 4, cr, cc)
    linked = np.zeros((5, 4), dtype=bool)
    linked[cr, cc] = True
    expect = np.flatnonzero(linked[lx[:, None], ly[None, :]].ravel())
    assert np.array_equal(np.sort(ri * 30 + rj), expect)


@pytest.mark.parametrize(("n", "m"), [(7, 7), (7, 4), (5, 12)])
def test_northwest_arcs_carry_the_northwest_corner_plan(n: int, m: int) -> None:
    """The arcs, in order, are a monotone staircase from (first, first) to (last, last) of
    both sets sorted lexicographically, and they carry the north-west-corner flows."""
    rng = np.random.default_rng(44 + n + m)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((m, 2))
    a, b = np.full(n, 1 / n), np.full(m, 1 / m)
    rows, cols = W._northwest_arcs(x, y, a, b)
    rank_x = np.empty(n, dtype=np.int64)
    rank_x[np.lexsort(x.T[::-1])] = np.arange(n)
    rank_y = np.empty(m, dtype=np.int64)
    rank_y[np.lexsort(y.T[::-1])] = np.arange(m)
    i, j = rank_x[rows], rank_y[cols]
    assert (i[0], j[0], i[-1], j[-1]) == (0, 0, n - 1, m - 1)
    steps = np.diff(i) + np.diff(j)
    assert np.all(np.diff(i) >= 0) and np.all(np.diff(j) >= 0) and np.all(steps >= 1)
    ca, cb = np.arange(1, n + 1) / n, np.arange(1, m + 1) / m
    ends = np.minimum(ca[i], cb[j])  # the NW flow on arc k ends where its row or column fills
    flow = np.diff(np.concatenate([[0.0], ends]))
    np.testing.assert_allclose(np.bincount(i, flow, minlength=n), a, atol=1e-15)
    np.testing.assert_allclose(np.bincount(j, flow, minlength=m), b, atol=1e-15)


def test_scale_is_the_sum_of_the_largest_terms() -> None:
    x, y = np.array([[1.0, 2.0], [0.0, 0.5]]), np.array([[3.0, 0.0]])
    u, v = np.array([-7.0, 1.0]), np.array([0.25])
    assert W._scale(x, y, u, v) == 5.0 + 9.0 + 7.0 + 0.25
    assert W._scale(np.zeros((2, 2)), np.zeros((1, 2)), np.zeros(2), np.zeros(1)) == 1e-300


def test_exact_potentials_repair_drifted_duals_of_a_degenerate_plan() -> None:
    """n = m: the plan is a permutation, n separate support trees tied by zero-flow tight arcs.
    Duals with 1e-9 * scale of noise come back tight to rounding on the support, feasible for
    every pair, and within the noise of the given ones (one root per tree keeps its value)."""
    rng = np.random.default_rng(45)
    x, y = 30.0 * rng.standard_normal((60, 2)), 30.0 * rng.standard_normal((60, 2))
    a = b = np.full(60, 1 / 60)
    rows, cols = np.divmod(np.arange(3600), 60)
    costs = W._pair_costs(x, y, rows, cols)
    plan, log = ot.emd(a, b, costs.reshape(60, 60), log=True)
    fr, fc = np.nonzero(plan)
    scale = W._scale(x, y, log["u"], log["v"])
    u0 = log["u"] + 1e-9 * scale * rng.standard_normal(60)
    v0 = log["v"] + 1e-9 * scale * rng.standard_normal(60)
    u, v, forest = W._exact_potentials(x, y, (fr, fc), (np.arange(3600), rows, cols, costs), u0, v0)
    assert {(i, j) for i, j in zip(fr, fc, strict=True)} <= set(zip(*forest, strict=True))
    assert len(forest[0]) <= 119  # a forest on the 120 nodes
    rc = (costs - u[rows] - v[cols]).reshape(60, 60)
    assert np.abs(rc[fr, fc]).max() <= 1e-13 * scale
    assert rc.min() >= -1e-13 * scale
    assert max(np.abs(u - u0).max(), np.abs(v - v0).max()) <= 1e-8 * scale


def test_tree_potentials_make_every_forest_arc_tight_at_new_costs() -> None:
    """The forest of one problem, the points then moved: u_i + v_j = c_ij on every arc at the
    new costs, and one node per tree (its lowest-numbered) keeps its given value."""
    rng = np.random.default_rng(58)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal((40, 2))
    a, b = W._uniform(50), W._uniform(40)
    sol = W._solve_dense(x, y, a, b)
    rows, cols = np.divmod(np.arange(2000), 40)
    costs = W._pair_costs(x, y, rows, cols)
    _, _, forest = W._exact_potentials(
        x, y, (sol.rows, sol.cols), (np.arange(2000), rows, cols, costs), sol.u, sol.v
    )
    forest = (forest[0][::2], forest[1][::2])  # several trees
    y2 = y + 0.1 * rng.standard_normal(y.shape)
    u0, v0 = rng.standard_normal(50), rng.standard_normal(40)
    u, v = W._tree_potentials(x, y2, forest, u0, v0)
    np.testing.assert_allclose(
        u[forest[0]] + v[forest[1]], W._pair_costs(x, y2, *forest), atol=1e-12
    )
    graph = W.coo_matrix((np.ones(len(forest[0])), (forest[0], forest[1] + 50)), shape=(90, 90))
    n_comp, comp = W.connected_components(graph, directed=False)
    roots = np.unique(comp, return_index=True)[1]
    assert n_comp > 1
    np.testing.assert_array_equal(np.concatenate([u, v])[roots], np.concatenate([u0, v0])[roots])


def _pivots(problem: tuple, u: np.ndarray, v: np.ndarray) -> int:
    """The fewest network simplex pivots that reach optimality (bisection on numItermax)."""
    a, b, rows, cols, costs = problem
    lo, hi = 1, 1 << 20
    while lo < hi:
        mid = (lo + hi) // 2
        code = W.emd_c_sparse(a, b, rows, cols, costs, mid, u, v)[-1]
        lo, hi = (lo, mid) if code == 1 else (mid + 1, hi)
    return lo


def test_warm_start_rebuilds_the_previous_basis(monkeypatch) -> None:
    """A warm problem's first sparse solve starts from the duals that make the previous
    forest tight at the new costs: from them POT's warm start rebuilds the previous basis, a
    feasible one, and needs fewer pivots than from the previous duals, about a third over the
    sequence (seen: 8,155 against 23,613 pivots for 9 problems; cold about 3,200 each)."""
    ref, samples = _converging_sequence(400, 400, 11, seed=20)
    seen, warm, rounds = [], W._solve_warm, W._sparse_rounds

    def solve_warm(x, y, a, b, prev, near_x):
        seen.append({"prev": (prev.u.copy(), prev.v.copy()), "forest": prev.forest})
        return warm(x, y, a, b, prev, near_x)

    def sparse_rounds(x, y, a, b, keys, u, v, *rest):
        if seen and "problem" not in seen[-1]:
            rows, cols = np.divmod(np.unique(keys), len(y))
            costs = W._pair_costs(x, y, rows, cols)
            seen[-1]["problem"] = (a, b, rows.astype(np.uint64), cols.astype(np.uint64), costs)
            seen[-1]["given"] = (u, v)
        return rounds(x, y, a, b, keys, u, v, *rest)

    monkeypatch.setattr(W, "_solve_warm", solve_warm)
    monkeypatch.setattr(W, "_sparse_rounds", sparse_rounds)
    res = w2_many_certified(ref, samples)
    assert [r.method for r in res] == ["dense"] + ["warm"] * 10
    assert seen[0]["forest"] is None  # the dense solver's plan has no forest
    assert all(s["forest"] is not None for s in seen[1:])
    given = np.array([_pivots(s["problem"], *s["given"]) for s in seen[1:]])
    prev = np.array([_pivots(s["problem"], *s["prev"]) for s in seen[1:]])
    assert (given < prev).all() and given.sum() <= 0.5 * prev.sum()


def test_full_check_row_minima_against_brute_force() -> None:
    rng = np.random.default_rng(46)
    x, y = rng.standard_normal((37, 3)), rng.standard_normal((29, 3))
    u, v = rng.uniform(-1.0, 2.0, 37), rng.uniform(-1.0, 2.0, 29)
    u[0] = 50.0  # row 0 is the most violated
    r = ((x[:, None] - y[None]) ** 2).sum(-1) - u[:, None] - v[None, :]
    tol = 0.5
    row_min, rows, cols = W._full_check(x, y, u, v, tol)
    np.testing.assert_allclose(row_min, r.min(axis=1), atol=1e-12)
    assert np.array_equal(rows, np.flatnonzero(r.min(axis=1) < -tol))
    assert np.array_equal(cols, r.argmin(axis=1)[rows])
    assert 0 < len(rows) < 37 and np.any(np.abs(r.min(axis=1)) < tol)  # the cut matters


@pytest.mark.parametrize("size", [0, 1, 2, 1000])
def test_sorted_unique_equals_np_unique(size: int) -> None:
    """The sort-based unique returns np.unique's values (sorted, each once), duplicates or not."""
    keys = np.random.default_rng(size).integers(0, max(size // 3, 1), size)
    out = W._sorted_unique(keys)
    assert np.array_equal(out, np.unique(keys)) and out.dtype == keys.dtype


def test_add_pairs_merges_new_keys_sorted_and_counts_them() -> None:
    rng = np.random.default_rng(47)
    x, y = rng.standard_normal((4, 2)), rng.standard_normal((5, 2))
    keys = np.array([2, 5, 9])
    costs = W._pair_costs(x, y, *np.divmod(keys, 5))
    merged, mcosts, n_new = W._add_pairs(x, y, keys, costs, np.array([9, 11, 5, 0, 11, 19]))
    assert n_new == 3 and merged.tolist() == [0, 2, 5, 9, 11, 19]
    np.testing.assert_array_equal(mcosts, W._pair_costs(x, y, *np.divmod(merged, 5)))
    assert W._add_pairs(x, y, keys, costs, np.array([9, 2]))[2] == 0


@pytest.mark.parametrize(("n", "m"), [(3, 20), (20, 3), (15, 15)])
def test_knn_keys_are_each_points_nearest_in_the_other_set(n: int, m: int) -> None:
    rng = np.random.default_rng(48)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((m, 2))
    keys = W._knn_keys(x, y, W.cKDTree(x), W.cKDTree(y), 8)
    d = ((x[:, None] - y[None]) ** 2).sum(-1)
    k = min(8, n, m)
    near_y = np.argsort(d, axis=1)[:, :k]  # each x point's k nearest y
    near_x = np.argsort(d, axis=0)[:k, :]  # each y point's k nearest x
    expect = np.concatenate(
        [
            np.repeat(np.arange(n), k) * m + near_y.ravel(),
            near_x.T.ravel() * m + np.repeat(np.arange(m), k),
        ]
    )
    assert len(keys) == (n + m) * k and set(keys.tolist()) == set(expect.tolist())


def test_result_divides_by_the_frame_factor() -> None:
    """A solution found in the frame of factor f = 4: the value is divided by f; the cost, the
    lower bound, the gap and the least reduced cost (all squared lengths) by f^2."""
    sol = W._Solution(
        np.array([0]),
        np.array([0]),
        np.array([1.0]),
        np.zeros(1),
        np.zeros(1),
        n_levels=2,
        n_rounds=3,
        n_pairs=7,
        n_added=5,
        n_added_full=2,
        cost=64.0,
        lower=48.0,
        min_rc=-32.0,
    )
    res = W._result(sol, "sparse", 4.0, warm_fallback=True)
    assert (res.value, res.cost, res.lower_bound, res.gap) == (2.0, 4.0, 3.0, 1.0)
    assert res.min_reduced_cost == -2.0
    assert (res.n_rounds, res.n_candidate_pairs, res.n_added_pairs) == (3, 7, 5)
    assert (res.n_added_by_full_check, res.n_levels) == (2, 2)
    assert (res.method, res.warm_fallback) == ("sparse", True)


def test_certify_bounds_and_allowance() -> None:
    """_certify on a dense solution: cost = sum_k f_k c_k; lower = a.u + b.v + a.row_min less
    64 eps * scale (the all-pairs check's own rounding)."""
    rng = np.random.default_rng(49)
    x, y = 10.0 * rng.standard_normal((40, 2)), 10.0 * rng.standard_normal((30, 2))
    a, b = W._uniform(40), W._uniform(30)
    sol = W._solve_dense(x, y, a, b)
    proven, rows, cols = W._certify(x, y, a, b, sol)
    assert proven and rows.size == 0 and cols.size == 0
    scale = W._scale(x, y, sol.u, sol.v)
    row_min = W._full_check(x, y, sol.u, sol.v, 1.0)[0]
    assert sol.cost == float(np.dot(sol.flows, W._pair_costs(x, y, sol.rows, sol.cols)))
    assert sol.lower == float(a @ sol.u + b @ sol.v + a @ row_min) - 64 * W._EPS * scale
    assert sol.min_rc == row_min.min()


def _far_tight_problem() -> tuple:
    """W2^2 far below the scale: 40 and 30 points of spread 1e-2 at (1e3, 0), solved dense (no
    frame). Returns x, y, a, b, the solution, its _scale and the certificate's gap allowance."""
    rng = np.random.default_rng(52)
    x = 1e-2 * rng.standard_normal((40, 2)) + [1e3, 0.0]
    y = 1e-2 * rng.standard_normal((30, 2)) + [1e3, 0.0]
    a, b = W._uniform(40), W._uniform(30)
    sol = W._solve_dense(x, y, a, b)
    scale = W._scale(x, y, sol.u, sol.v)
    cost = float(np.dot(sol.flows, W._pair_costs(x, y, sol.rows, sol.cols)))
    return x, y, a, b, sol, scale, W._GAP_RTOL * cost + 256 * W._EPS * scale


def test_certify_adds_pairs_the_allowance_cannot_absorb() -> None:
    """W2^2 far below the scale (a tight set far from the origin, no frame). v_k raised by
    1e-5 on a column served by two rows: their reduced costs fall to -1e-5, inside
    _REL_TOL * scale (2e-5), and the lower bound drops by 1e-5 (2/40 - 1/30), beyond the
    allowance (1.1e-7): the proof fails, and both rows' pairs are returned to be added."""
    x, y, a, b, sol, scale, allowance = _far_tight_problem()
    assert 1e-5 / 60 > allowance and 1e-5 < W._REL_TOL * scale
    k = int(np.flatnonzero(np.bincount(sol.cols, minlength=30) == 2)[0])
    sol.v[k] += 1e-5
    proven, rows, cols = W._certify(x, y, a, b, sol)
    assert not proven
    assert sorted(rows.tolist()) == sorted(sol.rows[sol.cols == k].tolist())
    assert (cols == k).all()


def test_certify_returns_violations_beyond_half_the_allowance() -> None:
    """The pairs to add are those with r_ij below -min(_REL_TOL scale, allowance / 2): on the
    set above, v_k raised by 1e-7 puts two rows' reduced costs at -1e-7, between half the
    allowance (5.5e-8) and 1.5 times it, far inside _REL_TOL scale. The gap then grows by
    1.7e-9 only, so the proof holds, and both rows' pairs are still returned."""
    x, y, a, b, sol, scale, allowance = _far_tight_problem()
    assert 0.5 * allowance < 1e-7 < 1.5 * allowance < W._REL_TOL * scale
    k = int(np.flatnonzero(np.bincount(sol.cols, minlength=30) == 2)[0])
    sol.v[k] += 1e-7
    proven, rows, cols = W._certify(x, y, a, b, sol)
    assert proven
    assert sorted(rows.tolist()) == sorted(sol.rows[sol.cols == k].tolist())
    assert (cols == k).all()


def test_sparse_rounds_count_the_pairs_the_full_check_adds() -> None:
    """With the local search disabled (each point its own only neighbour, so it proposes the
    plan's own pairs) and only the north-west-corner arcs to start from, every added pair comes
    from the all-pairs check, over many rounds: n_added_full sums them all."""
    rng = np.random.default_rng(54)
    x, y = rng.standard_normal((60, 2)), rng.standard_normal((50, 2))
    a, b = W._uniform(60), W._uniform(50)
    nr, nc = W._northwest_arcs(x, y, a, b)
    near = (np.arange(60)[:, None], np.arange(50)[:, None])
    sol = W._sparse_rounds(x, y, a, b, nr * 50 + nc, np.zeros(60), np.zeros(50), near, 1, 200)
    assert sol.n_rounds > 3 and sol.n_added > 0
    assert sol.n_added_full == sol.n_added
    assert sol.cost == pytest.approx(w2_emd(x, y) ** 2, rel=1e-12)


def test_warm_start_carries_the_duals_across_a_change_of_frame(monkeypatch) -> None:
    """A frame factor f multiplies every c_ij, hence the optimal duals, by f^2: the previous
    problem's duals (frame 2) times (8 / 2)^2 are optimal for the same problem in frame 8, so
    the warm start's simplex needs only a few pivots. With a limit of 100 pivots on the warm
    solves it closes; duals scaled by any other factor (4, 8, 64, 256, 1/16 on either side)
    need more there and fall back to the cold path."""
    rng = np.random.default_rng(55)
    ref, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    assert W._frame(ref, y)[2] == 1.0
    factors, plain = iter([2.0, 8.0]), W._frame

    def framed(x, z):
        x0, z0, _ = plain(x, z)
        f = next(factors)
        return f * x0, f * z0, f

    limits, warm = W._iteration_limits, W._solve_warm
    capped = {"on": False}

    def solve_warm(*args):
        capped["on"] = True
        try:
            return warm(*args)
        finally:
            capped["on"] = False

    monkeypatch.setattr(W, "_frame", framed)
    monkeypatch.setattr(W, "_solve_warm", solve_warm)
    monkeypatch.setattr(W, "_iteration_limits", lambda n: (100,) if capped["on"] else limits(n))
    first, second = w2_many_certified(ref, np.stack([y, y]))
    assert second.method == "warm" and not second.warm_fallback
    assert second.value == pytest.approx(first.value, rel=1e-12)


def test_balanced_duals_keep_every_pair_sum_and_drop_the_offset() -> None:
    """(u - s, v + s) with s = (mid u - mid v) / 2: u_i + v_j unchanged, mid u = mid v (half
    the invariant mid u + mid v), and max |u| + max |v| no larger than under any other shift."""
    rng = np.random.default_rng(53)
    u, v = 5e9 + rng.uniform(-3.0, 1.0, 50), -5e9 + rng.uniform(0.0, 8.0, 40)
    ub, vb = W._balanced(u, v)
    np.testing.assert_allclose(ub[:, None] + vb[None, :], u[:, None] + v[None, :], atol=1e-5)
    mid = 0.25 * (u.max() + u.min() + v.max() + v.min())
    assert 0.5 * (ub.max() + ub.min()) == pytest.approx(mid, abs=1e-5)
    assert 0.5 * (vb.max() + vb.min()) == pytest.approx(mid, abs=1e-5)
    spread = np.abs(ub).max() + np.abs(vb).max()
    shifts = np.linspace(-20.0, 20.0, 81)
    assert all(np.abs(ub - t).max() + np.abs(vb + t).max() >= spread - 1e-9 for t in shifts)


@pytest.mark.parametrize("seed", [0, 6, 9])
def test_far_outliers_certified_on_the_sparse_path(seed: int) -> None:
    """1% of the samples 800x farther out, as from a diverging early checkpoint: the network
    simplex's potentials then carry its artificial arcs' offset (about 5e9), and before the
    duals were balanced the certificate's tolerances grew with it and the proof failed (on
    these 3 of seeds 0-11; now all 12 close with relative gaps of 1e-11 to 4e-11)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2000, 2))
    y = 0.5 * rng.standard_normal((2000, 2))
    y[:20] *= 800.0
    res = w2_certified(x, y)
    assert res.method == "sparse" and res.gap <= 1e-9 * res.cost
    assert res.value == pytest.approx(w2_emd(x, y), rel=1e-11)


def test_dense_path_bookkeeping_at_the_size_limit(monkeypatch) -> None:
    rng = np.random.default_rng(50)
    x, y = rng.standard_normal((30, 2)), rng.standard_normal((40, 2))
    monkeypatch.setattr(W, "_DENSE_MAX_PAIRS", 30 * 40)  # n m <= the limit: dense
    res = w2_certified(x, y)
    assert res.method == "dense" and res.n_levels == 1 and res.n_rounds == 1
    assert res.n_candidate_pairs == 30 * 40 and res.warm_fallback is False
    assert (res.n_added_pairs, res.n_added_by_full_check) == (0, 0)


def test_multiscale_levels_for_1600_points() -> None:
    """1600 x 1600: cells of 8 give a 200 x 200 coarse problem, dense: two levels."""
    rng = np.random.default_rng(51)
    res = w2_certified(rng.standard_normal((SPARSE_N, 2)), rng.standard_normal((SPARSE_N, 2)))
    assert res.method == "sparse" and res.n_levels == 2


class _Spy:
    """Records the finest level's _sparse_rounds: its first keys, solves, additions, proofs."""

    def __init__(self, monkeypatch) -> None:
        self.events: list[tuple] = []
        for name in ("_sparse_rounds", "_emd_sparse", "_add_pairs", "_certify"):
            monkeypatch.setattr(W, name, self._wrap(name, getattr(W, name)))

    def _wrap(self, name, fn):
        def spy(*args):
            if name == "_sparse_rounds":
                self.events.append((name, np.unique(args[4]).size))
            out = fn(*args)
            if name == "_add_pairs":
                self.events.append((name, out[2]))
            elif name == "_certify":
                self.events.append((name, out[0]))
            elif name == "_emd_sparse":
                self.events.append((name,))
            return out

        return spy

    def finest(self) -> list[tuple]:
        starts = [k for k, e in enumerate(self.events) if e[0] == "_sparse_rounds"]
        return self.events[starts[-1] :]


def test_sparse_rounds_bookkeeping(monkeypatch) -> None:
    """n_rounds = sparse solves, n_added_pairs = pairs added by the local search and the
    all-pairs check, n_added_by_full_check = the latter, n_candidate_pairs = the first
    candidate set plus the added pairs (measured here: 6 rounds, 1 pair from the check)."""
    rng = np.random.default_rng(4)
    x = _clusters(2000, rng)
    y = _noisy_copy(_clusters(2000, rng), rng)
    spy = _Spy(monkeypatch)
    res = w2_certified(x, y)
    ev = spy.finest()
    added = [e[1] for e in ev if e[0] == "_add_pairs"]
    after_check = [e[1] for p, e in pairwise(ev) if p == ("_certify", False)]
    assert res.n_rounds == sum(e[0] == "_emd_sparse" for e in ev) > 1
    assert res.n_added_pairs == sum(added) > 0
    assert res.n_added_by_full_check == sum(after_check) > 0
    assert res.n_candidate_pairs == ev[0][1] + res.n_added_pairs


def test_round_limit_is_exact(monkeypatch) -> None:
    """_MAX_ROUNDS = the most rounds any level needs closes; one fewer raises, naming it."""
    rng = np.random.default_rng(4)
    x = _clusters(2000, rng)
    y = _noisy_copy(_clusters(2000, rng), rng)
    spy = _Spy(monkeypatch)
    value = w2_certified(x, y).value
    starts = [k for k, e in enumerate(spy.events) if e[0] == "_sparse_rounds"] + [None]
    need = max(sum(e[0] == "_emd_sparse" for e in spy.events[s:t]) for s, t in pairwise(starts))
    monkeypatch.setattr(W, "_MAX_ROUNDS", need)
    assert w2_certified(x, y).value == value
    monkeypatch.setattr(W, "_MAX_ROUNDS", need - 1)
    with pytest.raises(RuntimeError, match=f"certificate loop did not close in {need - 1} rounds"):
        w2_certified(x, y)


def _finest_certify(monkeypatch, size: int, verdict) -> tuple[np.ndarray, np.ndarray]:
    """60 and 50 points, dense up to ``size`` pairs; at the finest level (60 points) _certify's
    answer is replaced by ``verdict(sol)`` after the real check (coarser levels keep it)."""
    rng = np.random.default_rng(52)
    certify = W._certify

    def patched(x, y, a, b, sol):
        answer = certify(x, y, a, b, sol)
        return answer if len(x) < 60 else verdict(sol)

    monkeypatch.setattr(W, "_DENSE_MAX_PAIRS", size)
    monkeypatch.setattr(W, "_certify", patched)
    return rng.standard_normal((60, 2)), rng.standard_normal((50, 2))


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (60 * 50, "exact W2: the dense solver's plan failed the optimality certificate"),
        (10 * 10, "exact W2: optimality not proven and no violated pair left to add"),
    ],
)
def test_unproven_without_violated_pairs_says_so(monkeypatch, size: int, message: str) -> None:
    def unproven(sol):
        sol.cost, sol.lower, sol.min_rc = 2.0, 1.0, -0.5
        return False, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    x, y = _finest_certify(monkeypatch, size, unproven)
    with pytest.raises(RuntimeError) as err:
        w2_certified(x, y)
    assert str(err.value) == f"{message} (gap 1.000e+00, min reduced cost -5.000e-01)"


_AT_ALLOWANCE = 1e-9 + 256 * W._EPS * 1e13  # cost 1, scale 1e13: 1 - gap is exact (Sterbenz)


@pytest.mark.parametrize(
    ("cost", "scale", "gap", "accepted"),
    [
        (1.0, 0.0, 9.9e-10, True),  # scale 0: the allowance is 1e-9 * cost alone
        (1.0, 0.0, 1.01e-9, False),
        (4.0, 1e4, 4.5e-9, True),  # allowance 4e-9 + 256 eps 1e4 = 4.5684e-9
        (4.0, 1e4, 4.5695e-9, False),  # between 256 and 257 eps * scale
        (4.0, 1e4, 4.6e-9, False),
        (1.0, 1e13, _AT_ALLOWANCE, True),  # exactly at the allowance
    ],
)
def test_stuck_plan_is_accepted_within_the_looser_gap_only(
    monkeypatch, cost: float, scale: float, gap: float, accepted: bool
) -> None:
    """When the all-pairs check's violated pairs are all candidates already (here: it returns
    a pair of the plan), the plan is accepted if its gap is within _GAP_RTOL_STUCK * cost +
    256 eps * scale (1e-9 instead of 1e-10), and gap_rtol says so; beyond, it raises."""

    def stuck(sol):
        sol.cost, sol.lower, sol.scale = cost, cost - gap, scale
        return False, sol.rows[:1], sol.cols[:1]

    x, y = _finest_certify(monkeypatch, 10 * 10, stuck)
    assert W._GAP_RTOL_STUCK == 1e-9
    gap = cost - (cost - gap)  # the gap the solver sees (off by 1 ulp of cost at most)
    if not accepted:
        with pytest.raises(RuntimeError, match=f"no violated pair left to add .gap {gap:.3e}"):
            w2_certified(x, y)
        return
    res = w2_certified(x, y)
    assert res.method == "sparse" and res.gap_rtol == W._GAP_RTOL_STUCK
    assert (res.cost, res.lower_bound, res.gap) == (cost, cost - gap, gap)
    assert res.n_added_by_full_check == 0 and res.n_rounds >= 1


def test_dense_solver_names_an_infeasible_problem() -> None:
    """A fatal result (not an iteration limit) is not retried: the message names the first
    limit and the problem's shape."""
    cost = np.full((5, 4), np.inf)  # POT: "Problem infeasible" (result code 0)
    with pytest.raises(RuntimeError, match=r"numItermax=100000, 5x4 problem"):
        W._emd_dense(W._uniform(5), W._uniform(4), cost)


def test_w2_emd_names_a_fatal_result(monkeypatch) -> None:
    calls = []

    def fatal(a, b, cost, numItermax, log):
        calls.append(numItermax)
        return 0.0, {"result_code": 0, "warning": "infeasible"}

    monkeypatch.setattr(W.ot, "emd2", fatal)
    with pytest.raises(RuntimeError, match=r"infeasible; numItermax=100000, 3x5 problem"):
        w2_emd(np.zeros((3, 2)), np.ones((5, 2)))
    assert calls == [100_000]


def test_sparse_solver_refuses_arcs_without_a_feasible_plan() -> None:
    a, b = W._uniform(3), W._uniform(3)
    rows, cols = np.array([0, 0, 0]), np.array([0, 1, 2])  # rows 1 and 2 cannot ship
    with pytest.raises(RuntimeError, match=r"sparse network simplex .*infeasible.*3 arcs"):
        W._emd_sparse(a, b, rows, cols, np.ones(3), None, None)


@pytest.mark.parametrize("size", [W._DENSE_MAX_PAIRS, 100 * 100])
def test_certified_path_retries_at_the_iteration_limit(monkeypatch, size: int) -> None:
    """The dense (and the sparse) simplex stop at a first limit of 2 iterations; the retry's
    limit solves it: w2_certified itself, without the w2_emd fallback, is exact."""
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    monkeypatch.setattr(W, "_DENSE_MAX_PAIRS", size)
    monkeypatch.setattr(W, "_iteration_limits", lambda n_arcs: (2, 10**8))
    res = w2_certified(x, y)
    assert res.method == ("sparse" if size == 100 * 100 else "dense")
    assert res.value == pytest.approx(_assignment_w2(x, y), rel=1e-9)


def test_w2_many_warm_and_cold_failures_fall_back_to_emd(monkeypatch) -> None:
    """Problem 1's warm start fails and so does its cold solve: a w2_emd value, marked as a
    warm fallback."""
    ref, samples = _converging_sequence(60, 50, 2, seed=53)
    solve = W._solve
    calls = []

    def second_fails(x, y, a, b):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("exact W2: optimality not proven")
        return solve(x, y, a, b)

    def warm_fails(*args):
        raise W._NotClosed("exact W2: certificate loop did not close in 12 rounds")

    monkeypatch.setattr(W, "_solve", second_fails)
    monkeypatch.setattr(W, "_solve_warm", warm_fails)
    with pytest.warns(RuntimeWarning, match=r"samples\[1\]"):
        res = w2_many_certified(ref, samples)
    assert (res[0].method, res[0].warm_fallback) == ("dense", False)
    assert (res[1].method, res[1].warm_fallback) == ("emd", True)
    assert res[1].value == pytest.approx(w2_emd(ref, samples[1]), rel=1e-12)


# --------------------------------------------------------------------------- assignment start


def _problem_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All n^2 pairs of two Gaussian clouds: (rows, cols, costs, dense cost matrix)."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2)) + 0.3
    rows, cols = np.divmod(np.arange(n * n), n)
    costs = W._pair_costs(x, y, rows, cols)
    return rows, cols, costs, costs.reshape(n, n)


def test_assignment_start_makes_an_optimal_permutation_tight() -> None:
    """u = c_{i sigma(i)} - v_sigma(i) for OR-Tools' assignment sigma: in every row the arc
    with r_ij = c_ij - u_i - v_j = 0 is the mate, the mates form a permutation, and its cost is
    the optimal assignment cost (scipy's Hungarian-type solver) to the integer rounding, n / S
    at most; v is kept as given."""
    n = 120
    rows, cols, costs, dense = _problem_pairs(n, 61)
    v = np.random.default_rng(62).standard_normal(n)
    u = W._assignment_start(rows, cols, costs, v)
    reduced = dense - u[:, None] - v[None, :]
    mate = np.argmin(np.abs(reduced), axis=1)
    assert np.abs(reduced[np.arange(n), mate]).max() < 1e-12
    assert np.array_equal(np.sort(mate), np.arange(n))
    r, c = linear_sum_assignment(dense)
    best = dense[r, c].sum()
    steps = n * dense.max() / 2.0 ** np.floor(60 - 2 * np.log2(n + 1) - np.log2(dense.max()))
    assert best <= dense[np.arange(n), mate].sum() <= best + steps


def test_assignment_start_is_none_without_a_perfect_matching() -> None:
    """Two rows whose only candidate is the same column: no assignment exists; the caller then
    keeps its own potentials."""
    rows, cols = np.array([0, 1, 2, 2]), np.array([0, 0, 1, 2])
    assert W._assignment_start(rows, cols, np.ones(4), np.zeros(3)) is None


@pytest.mark.parametrize(
    ("n", "m", "pairs", "solved", "uniform", "expected"),
    [
        (12000, 12000, 1050, 1000, True, True),  # grown by exactly 5%
        (12000, 12000, 1049, 1000, True, False),  # grown by less
        (12000, 12000, 10, 0, True, True),  # no duals optimal for any candidate set
        (9999, 9999, 10, 0, True, False),  # too small
        (12000, 12001, 10, 0, True, False),  # not square
        (12000, 12000, 10, 0, False, False),  # weights not uniform (a coarse level)
    ],
)
def test_assignment_pays_only_for_large_square_uniform_grown_problems(
    n: int, m: int, pairs: int, solved: int, uniform: bool, expected: bool
) -> None:
    a, b = W._uniform(n), W._uniform(m)
    if not uniform:
        a = a.copy()
        a[:2] += np.array([1e-6, -1e-6])
    assert W._ASSIGNMENT_MIN == 10_000 and W._ASSIGNMENT_GROWTH == 0.05
    assert W._assignment_pays(a, b, pairs, solved) is expected


def test_certified_path_with_assignment_starts_matches_emd(monkeypatch) -> None:
    """With the threshold lowered to this problem's size, the cold path starts the finest
    level's simplex from OR-Tools' assignment (first round and every round that grew the
    candidate set by 5%), and still returns emd2's optimum, proven; the same with the start
    switched off (the plain path), to the certificate's gap."""
    rng = np.random.default_rng(63)
    x = rng.standard_normal((SPARSE_N, 2))
    y = 0.8 * rng.standard_normal((SPARSE_N, 2)) + 0.5
    calls = []
    start = W._assignment_start
    monkeypatch.setattr(W, "_ASSIGNMENT_MIN", SPARSE_N)
    monkeypatch.setattr(W, "_assignment_start", lambda *a: calls.append(len(a[0])) or start(*a))
    res = w2_certified(x, y)
    assert calls and all(k > 0 for k in calls)
    assert res.method == "sparse" and res.gap <= res.gap_rtol * res.cost + 1e-12
    reference = w2_emd(x, y)
    assert res.value == pytest.approx(reference, rel=1e-9)
    monkeypatch.setattr(W, "_ASSIGNMENT_MIN", 10**9)
    calls.clear()
    plain = w2_certified(x, y)
    assert not calls
    assert plain.value == pytest.approx(res.value, rel=1e-9)
