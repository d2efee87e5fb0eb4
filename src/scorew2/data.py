"""Two-dimensional training sets of the paper's experiments (docs/paper.md section 4).

Every set is drawn from ``np.random.default_rng(seed)`` and returned as an (n, 2) float64 array
whose rows are in a seeded random order, so that any prefix is a fair subsample.

What the authors' notebook (UW-Madison-Lee-Lab/score-wasserstein, Score_Wasserstein.ipynb) does,
and what is matched here:

- four_clusters: ``PointsDataset`` puts centres at (+-4, +-4), draws N(centre, 0.1^2 I) points
  (1000 per cluster) and divides everything by 8: centres (+-0.5, +-0.5), std 0.0125.
- imbalanced_clusters: the same with ``balanced=False``, which skips the centre with x < 0 and
  y < 0: the cluster at (-0.5, -0.5) is removed (3000 points, 1000 per remaining cluster).
- moons: ``sklearn.datasets.make_moons(5000, noise=0.1)`` then divided by 2. No centring: the
  noise is added in the sklearn frame and the result is scaled by 0.5 (x in about [-0.5, 1]).
  sklearn places the angles on an even grid ``linspace(0, pi, n_half)``; so do we.
- gaussian: ``np.random.multivariate_normal([0, 0], 0.1 I, 5000)`` clipped to [-1, 1].
- swiss_roll (commented out in the notebook): ``make_swiss_roll(n, noise=0.5)``, coordinates
  (x, z) divided by 10. sklearn's roll: t = 1.5 pi (1 + 2 u), u ~ U(0, 1), point
  (t cos t, t sin t), Gaussian noise of std ``noise`` added to each coordinate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorew2._checks import check_choice
from scorew2.runs import DATASETS

__all__ = ["DATASETS", "DEFAULTS", "make_dataset"]


#: Default parameters of each data set (the authors' code; see the module docstring).
DEFAULTS: dict[str, dict[str, float]] = {
    "four_clusters": {"std": 0.0125, "center": 0.5},
    "imbalanced_clusters": {"std": 0.0125, "center": 0.5},
    "moons": {"noise": 0.1, "scale": 0.5},
    "gaussian": {"var": 0.1, "clip": 1.0},
    "swiss_roll": {"noise": 0.5, "scale": 0.1},
}

# Which parameters must be > 0 (the others must be >= 0).
_POSITIVE = {"center", "scale", "var", "clip"}


def _check_params(name: str, params: dict[str, Any]) -> dict[str, float]:
    allowed = DEFAULTS[name]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for data set {name!r}; "
            f"allowed: {', '.join(allowed)}"
        )
    out = dict(allowed)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and key != "clip"):
            raise ValueError(f"{key}: expected a finite number, got {value}")
        if key in _POSITIVE and value <= 0:
            raise ValueError(f"{key}: must be > 0, got {value}")
        if value < 0:
            raise ValueError(f"{key}: must be >= 0, got {value}")
        out[key] = value
    return out


def _even_counts(n: int, k: int) -> np.ndarray:
    """Split n into k counts differing by at most one (the first n % k get one more)."""
    return np.full(k, n // k) + (np.arange(k) < n % k)


def _clusters(n: int, rng: np.random.Generator, centres: np.ndarray, std: float) -> np.ndarray:
    counts = _even_counts(n, len(centres))
    means = np.repeat(centres, counts, axis=0)
    return means + std * rng.standard_normal((n, 2))


def _moons(n: int, rng: np.random.Generator, noise: float, scale: float) -> np.ndarray:
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0.0, np.pi, n_out)
    a_in = np.linspace(0.0, np.pi, n_in)
    outer = np.stack([np.cos(a_out), np.sin(a_out)], axis=1)
    inner = np.stack([1.0 - np.cos(a_in), 1.0 - np.sin(a_in) - 0.5], axis=1)
    x = np.concatenate([outer, inner], axis=0)
    x = x + noise * rng.standard_normal(x.shape)
    return scale * x


def _gaussian(n: int, rng: np.random.Generator, var: float, clip: float) -> np.ndarray:
    x = math.sqrt(var) * rng.standard_normal((n, 2))
    return np.clip(x, -clip, clip)


def _swiss_roll(n: int, rng: np.random.Generator, noise: float, scale: float) -> np.ndarray:
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal(x.shape)
    return scale * x


def make_dataset(name: str, n: int, seed: int, **params: float) -> np.ndarray:
    """Draw ``n`` points of data set ``name`` with ``np.random.default_rng(seed)``.

    Parameters (defaults in ``DEFAULTS``):

    - four_clusters: ``std`` (per-coordinate std, default 0.0125 as in the authors' code; the
      paper's text, covariance 0.01 I, is ``std=0.1``), ``center`` (centres (+-c, +-c)).
      Points split as evenly as possible among the 4 clusters (n = 4000: 1000 each).
    - imbalanced_clusters: the same without the cluster at (-c, -c) (3 clusters).
    - moons: ``noise`` (std of the Gaussian noise added before scaling), ``scale``.
    - gaussian: ``var`` (N(0, var I)), ``clip`` (coordinates clipped to [-clip, clip]; inf
      disables).
    - swiss_roll: ``noise``, ``scale`` (see the module docstring).

    Returns an (n, 2) float64 array in a seeded random order. Raises ValueError for an unknown
    name or parameter, n < 1 or a bad parameter value.
    """
    check_choice(name, DATASETS, "data set")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    p = _check_params(name, params)
    n = int(n)
    rng = np.random.default_rng(int(seed))
    if name in ("four_clusters", "imbalanced_clusters"):
        c = p["center"]
        # The notebook's order: x centre outer loop, y centre inner loop.
        centres = np.array([[-c, -c], [-c, c], [c, -c], [c, c]], dtype=np.float64)
        if name == "imbalanced_clusters":
            centres = centres[1:]
        x = _clusters(n, rng, centres, p["std"])
    elif name == "moons":
        x = _moons(n, rng, p["noise"], p["scale"])
    elif name == "gaussian":
        x = _gaussian(n, rng, p["var"], p["clip"])
    else:
        x = _swiss_roll(n, rng, p["noise"], p["scale"])
    x = x[rng.permutation(n)]
    return np.ascontiguousarray(x, dtype=np.float64)
