"""Training sets in d dimensions for the dimension sweep (kind ``dimsweep``), and their names.

Each is a two-dimensional set of ``scorew2.data`` with d - 2 coordinates appended, each drawn
as the set's own noise, so the law's geometry in the plane is kept and only the dimension
grows (same n in every d):

- ``four_clusters`` in d: the 2-D set (centres (+-c, +-c), std sigma) exactly, then
  N(0, sigma^2) in every other coordinate: clusters N((+-c, +-c, 0, ..., 0), sigma^2 I_d).
- ``gaussian`` in d: N(0, v I_d) with no clipping (the 2-D set's ``clip`` is not applied),
  so that the law, its noised laws p_t = N(0, (abar_t v + 1 - abar_t) I_d) and its score
  s_t(x) = -x / (abar_t v + 1 - abar_t) are closed forms (``law_lipschitz``).

The appended coordinates come from their own stream: child d of the data seed's
``SeedSequence`` (the 2-D part from ``np.random.default_rng(seed)``, as ``scorew2.data``).
A set in d dimensions is named ``{base}-d{d}`` (``gaussian-d8``): ``dim_name`` writes the
name and ``parse_dim`` reads it back; ``plane_twin`` names the 2-D set that a set in d = 2
equals. No torch here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scorew2._checks import check_choice
from scorew2.data import DEFAULTS, make_dataset

__all__ = [
    "DIM_SETS",
    "dim_name",
    "dim_variants",
    "law_lipschitz",
    "make_highdim",
    "parse_dim",
    "plane_twin",
]

#: The data sets the dimension sweep embeds, in the order tables and figures show them.
DIM_SETS = ("gaussian", "four_clusters")

_NAME = re.compile(r"^(?P<base>[a-z_]+)-d(?P<dim>[0-9]+)$")


def dim_name(base: str, dim: int) -> str:
    """The name of ``base`` in ``dim`` dimensions: ``{base}-d{dim}``."""
    check_choice(base, DIM_SETS, "data set")
    return f"{base}-d{int(dim)}"


def parse_dim(name: str) -> tuple[str, int] | None:
    """(base, d) of a d-dimensional set's name, or None for any other data set name."""
    m = _NAME.match(name)
    return None if m is None else (m["base"], int(m["dim"]))


def dim_variants(bases: Sequence[str], dims: Sequence[int]) -> list[str]:
    """Every base in every dimension: base-major, dimensions in the given order."""
    return [dim_name(b, d) for b in bases for d in dims]


def plane_twin(name: str, datasets: Mapping[str, Mapping[str, Any]]) -> str:
    """The name of the set whose training array equals ``name``'s: the base set for a set in
    d = 2 that ``make_highdim`` leaves as it is (no coordinate appended; four clusters always,
    the Gaussian when its configured ``clip`` is infinite, since the embedding drops the clip),
    ``name`` itself otherwise.

    ``datasets`` is the config's block of 2-D sets (name -> parameters, as ``make_highdim``
    and ``scorew2.data.make_dataset`` read them, both from the same data seed).
    """
    parsed = parse_dim(name)
    if parsed is None or parsed[1] != 2 or parsed[0] not in DIM_SETS:
        return name
    base = parsed[0]
    clip = {**DEFAULTS[base], **datasets.get(base, {})}.get("clip", math.inf)
    return name if base == "gaussian" and math.isfinite(clip) else base


def _noise_scale(base: str, params: dict[str, float]) -> float:
    """The std of each appended coordinate: the clusters' sigma, or sqrt(v) of the Gaussian."""
    return params["std"] if base == "four_clusters" else math.sqrt(params["var"])


def make_highdim(base: str, n: int, dim: int, seed: int, **params: float) -> np.ndarray:
    """``n`` points of ``base`` in ``dim`` >= 2 dimensions (see the module docstring).

    ``params`` are the base set's (``scorew2.data.DEFAULTS``); the Gaussian's ``clip`` is
    ignored. Returns an (n, dim) float64 array in a seeded random order (the 2-D set's).
    Raises ValueError for a base outside ``DIM_SETS``, dim < 2 or a bad parameter.
    """
    check_choice(base, DIM_SETS, "data set")
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 2:
        raise ValueError(f"dim: expected an integer >= 2, got {dim!r}")
    full = {**DEFAULTS[base], **params}
    if base == "gaussian":
        params = {**params, "clip": math.inf}
    plane = make_dataset(base, n, seed, **params)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(dim),)))
    extra = _noise_scale(base, full) * rng.standard_normal((len(plane), int(dim) - 2))
    return np.ascontiguousarray(np.concatenate([plane, extra], axis=1))


def law_lipschitz(base: str, alpha_bars: np.ndarray, **params: float) -> np.ndarray:
    """L_s(t) of the law itself where it is a closed form, else NaN, per alpha-bar.

    Gaussian N(0, v I_d): p_t = N(0, s_t I_d), s_t = abar_t v + 1 - abar_t, whose score
    -x / s_t has the constant Jacobian -I / s_t: L_s(t) = -1 / (abar_t v + 1 - abar_t) in
    every d. Four clusters: no closed form (NaN).
    """
    check_choice(base, DIM_SETS, "data set")
    abar = np.asarray(alpha_bars, dtype=np.float64)
    if base != "gaussian":
        return np.full(abar.shape, np.nan)
    v = {**DEFAULTS[base], **params}["var"]
    return -1.0 / (abar * v + 1.0 - abar)
