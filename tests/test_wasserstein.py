"""Tests of scorew2.wasserstein: exact W2 against assignment, POT and closed forms."""

from __future__ import annotations

import warnings
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
        assert np.isnan([r.lower_bound, r.gap, r.min_reduced_cost]).all()
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
