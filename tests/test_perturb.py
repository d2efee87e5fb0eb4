"""Perturbed cluster sets (scorew2.perturb): their W2 to the base set against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from scorew2.data import make_dataset
from scorew2.perturb import parse_variant, perturb, variant_name, variants
from scorew2.wasserstein import w2

C = 0.5
X = make_dataset("four_clusters", 800, 3)


@pytest.mark.parametrize("delta", [0.05, 0.3])
def test_a_shifted_cluster_costs_delta_times_the_root_of_its_share(delta: float) -> None:
    """A translate is its own optimal coupling: W2 = delta sqrt(f), f the share that moved."""
    y = perturb(X, "shift", delta, C)
    moved = (X[:, 0] > 0) & (X[:, 1] > 0)
    assert np.array_equal(y[~moved], X[~moved])
    assert np.allclose(y[moved] - X[moved], [delta, 0.0])
    assert w2(X, y) == pytest.approx(delta * np.sqrt(moved.mean()), rel=1e-9)


@pytest.mark.parametrize("eps", [0.05, 0.25])
def test_moved_mass_lands_at_the_origin_and_costs_what_it_travels(eps: float) -> None:
    y = perturb(X, "mass", eps, C)
    k = round(eps * len(X))
    assert np.array_equal(y[k:], X[k:])
    assert np.allclose(y[:k], X[:k] - C * np.sign(X[:k]))
    assert np.abs(y[:k]).max() < 0.1  # near the origin, where p0 has no point
    # lower bound: the moved share travels at least its distance to the nearest point of p0;
    # upper bound: the coupling that moves exactly those rows, |c sign(x)| = c sqrt(2) each
    nearest = cdist(y[:k], X).min()
    assert np.sqrt(k / len(X)) * nearest <= w2(X, y) <= np.sqrt(k / len(X)) * C * np.sqrt(2)


def test_size_zero_is_the_identity_and_the_input_is_not_changed() -> None:
    before = X.copy()
    for family in ("shift", "mass"):
        assert np.array_equal(perturb(X, family, 0.0, C), X)
    perturb(X, "shift", 0.2, C)
    assert np.array_equal(X, before)


def test_names_round_trip_and_list_every_size_base_major() -> None:
    assert variant_name("four_clusters", "shift", 0.1) == "four_clusters-shift0.1"
    assert parse_variant("four_clusters-mass0.05") == ("four_clusters", "mass", 0.05)
    assert parse_variant("four_clusters") is None
    assert parse_variant(variant_name("four_clusters", "shift", 1e-5)) == (
        "four_clusters",
        "shift",
        1e-5,
    )
    # two sizes that %g would merge keep their own names
    assert variant_name("a", "shift", 0.1) != variant_name("a", "shift", 0.1000001)
    names = variants(["a", "b"], {"mass": [0.2], "shift": [0.1, 0.3]})
    assert names == [
        "a-shift0.1",
        "a-shift0.3",
        "a-mass0.2",
        "b-shift0.1",
        "b-shift0.3",
        "b-mass0.2",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("spin", 0.1, C), "unknown perturbation 'spin'"),
        (("shift", -0.1, C), "size: expected a finite number >= 0"),
        (("shift", float("nan"), C), "size: expected a finite number >= 0"),
        (("mass", 1.5, C), "size: a mass fraction is at most 1"),
        (("shift", 0.1, 0.0), "center: expected a finite number > 0"),
    ],
)
def test_bad_arguments_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        perturb(X, *args)


def test_bad_points_are_refused() -> None:
    with pytest.raises(ValueError, match="x: expected 2 coordinates"):
        perturb(np.zeros((4, 3)), "shift", 0.1, C)
    with pytest.raises(ValueError, match="x: 1 point"):
        perturb(np.array([[0.0, np.nan], [1.0, 1.0]]), "shift", 0.1, C)
