"""Tests of scorew2.data: shapes, seeding, the authors' parameters and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from scorew2.data import DATASETS, make_dataset


@pytest.mark.parametrize("name", DATASETS)
def test_shape_dtype_and_seed(name):
    x = make_dataset(name, 1001, seed=3)
    assert x.shape == (1001, 2)
    assert x.dtype == np.float64
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, make_dataset(name, 1001, seed=3))
    assert not np.array_equal(x, make_dataset(name, 1001, seed=4))


def _nearest_centre(x, centres):
    return np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)


def test_four_clusters_counts_std_and_shuffled_prefix():
    centres = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    x = make_dataset("four_clusters", 4000, seed=0)
    lab = _nearest_centre(x, centres)
    np.testing.assert_array_equal(np.bincount(lab, minlength=4), [1000] * 4)
    resid = x - centres[lab]
    assert abs(resid.std() - 0.0125) < 0.0125 * 0.05
    # shuffled: the first 400 points hold every cluster in about equal share
    head = np.bincount(lab[:400], minlength=4)
    assert head.min() > 60
    # uneven n: counts differ by at most one
    lab = _nearest_centre(make_dataset("four_clusters", 4003, seed=1), centres)
    counts = np.bincount(lab, minlength=4)
    assert counts.sum() == 4003 and counts.max() - counts.min() == 1


def test_four_clusters_paper_text_std():
    x = make_dataset("four_clusters", 40000, seed=0, std=0.1)
    q = np.sign(x)  # std 0.1 about +-0.5: almost every point keeps its quadrant
    resid = x - 0.5 * q
    assert abs(resid.std() - 0.1) < 0.003


def test_imbalanced_drops_lower_left_cluster():
    x = make_dataset("imbalanced_clusters", 3000, seed=0)
    assert not ((x[:, 0] < 0) & (x[:, 1] < 0)).any()
    centres = np.array([[-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(np.bincount(_nearest_centre(x, centres)), [1000] * 3)


def test_moons_shape_matches_sklearn_frame():
    # noise = 0: exactly the two half circles scaled by 1/2, no centring
    x = make_dataset("moons", 2001, seed=0, noise=0.0) / 0.5
    on_outer = np.abs(np.hypot(x[:, 0], x[:, 1]) - 1.0) < 1e-12
    on_inner = np.abs(np.hypot(x[:, 0] - 1.0, x[:, 1] - 0.5) - 1.0) < 1e-12
    assert (on_outer | on_inner).all()
    assert (on_outer & (x[:, 1] >= -1e-12)).sum() == 1000  # upper half of the unit circle
    assert (on_inner & (x[:, 1] <= 0.5 + 1e-12)).sum() == 1001
    assert np.isclose(x[:, 0].min(), -1.0) and np.isclose(x[:, 0].max(), 2.0)
    assert np.isclose(x[:, 1].min(), -0.5) and np.isclose(x[:, 1].max(), 1.0)
    # with noise: the default noise 0.1 is applied before scaling by 0.5
    y = make_dataset("moons", 20000, seed=0)
    z = make_dataset("moons", 20000, seed=0, noise=0.0)
    assert abs((y - z).std() - 0.05) < 0.002


def test_gaussian_variance_and_clip():
    x = make_dataset("gaussian", 50000, seed=0)
    assert np.abs(x).max() <= 1.0
    assert abs(x.var() - 0.1) < 0.004
    x = make_dataset("gaussian", 1000, seed=0, var=4.0, clip=0.5)
    assert np.abs(x).max() == 0.5


def test_swiss_roll_radius():
    x = make_dataset("swiss_roll", 5000, seed=0, noise=0.0) / 0.1
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.min() >= 1.5 * np.pi - 1e-9 and r.max() <= 4.5 * np.pi + 1e-9
    # on the spiral r = t with angle t (mod 2 pi)
    t = r
    np.testing.assert_allclose(x[:, 0], t * np.cos(t), atol=1e-9)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("circles", 10, 0), {}, "data set"),
        (("moons", 0, 0), {}, "n"),
        (("moons", 2.5, 0), {}, "n"),
        (("moons", 10, -1), {}, "seed"),
        (("moons", 10, 0), {"std": 0.1}, "std"),
        (("gaussian", 10, 0), {"var": -1.0}, "var"),
        (("gaussian", 10, 0), {"var": float("nan")}, "var"),
        (("four_clusters", 10, 0), {"std": -0.1}, "std"),
        (("swiss_roll", 10, 0), {"scale": "big"}, "scale"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(*args, **kwargs)


# The first and last of 6 points at seed 0, to 12 digits: the same seed gives the same data on
# every machine (the results' byte-for-byte promise), and any change to a formula shows here.
GOLDEN = {
    "four_clusters": [[0.492209069218, 0.500516574742], [-0.498428372236, -0.501651310791]],
    "moons": [[0.968836276873, 0.252066298967], [0.506286511055, -0.006605243165]],
    "gaussian": [[-0.197096690904, 0.013068422127], [0.039759386937, -0.041775225799]],
    "imbalanced_clusters": [
        [0.492209069218, 0.500516574742],
        [-0.498428372236, 0.498348689209],
    ],
    "swiss_roll": [[0.160868197422, -0.470243353303], [-0.23089369885, -0.982486623143]],
}


@pytest.mark.parametrize("name", DATASETS)
def test_data_at_a_seed_are_pinned(name):
    x = make_dataset(name, 6, seed=0)
    np.testing.assert_allclose(x[[0, -1]], GOLDEN[name], rtol=0, atol=1e-12)


def test_one_point_and_an_unclipped_gaussian():
    np.testing.assert_allclose(
        make_dataset("moons", 1, seed=0), [[0.006286511055, 0.243394756835]], atol=1e-12
    )
    x = make_dataset("gaussian", 3, seed=0, clip=float("inf"))  # clip may be infinite
    assert x.shape == (3, 2) and np.isfinite(x).all()


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("circles", 10, 0), {}, r"^unknown data set 'circles'; allowed: four_clusters"),
        (("moons", 10, 0), {"std": 0.1, "a": 1.0}, r"^unknown parameter\(s\) a, std for data set "
         r"'moons'; allowed: noise, scale$"),
        (("moons", 0, 0), {}, r"^n: expected an integer >= 1, got 0$"),
        (("moons", 10, 1.5), {}, r"^seed: expected a non-negative integer, got 1.5$"),
        (("gaussian", 10, 0), {"var": float("inf")}, r"^var: expected a finite number, got inf$"),
        (("gaussian", 10, 0), {"var": 0.0}, r"^var: must be > 0, got 0.0$"),
        (("moons", 10, 0), {"noise": -0.5}, r"^noise: must be >= 0, got -0.5$"),
    ],
)  # fmt: skip
def test_bad_input_messages(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(*args, **kwargs)
