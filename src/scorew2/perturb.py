"""Perturbed training sets for Theorem 3 (robustness): p0~ from p0, and their names.

Two families, each applied pointwise to a cluster set (``CLUSTER_SETS``, centres (+-c, +-c)),
so the perturbed set keeps the base set's order and a point keeps its row:

- ``shift`` of size delta: the cluster at (+c, +c) (the points with x > 0 and y > 0) moves by
  (delta, 0). With a fraction f of the points in that cluster, W2(p0, p0~)^2 <= f delta^2
  (the translation is one coupling; f = 1/4 for four balanced clusters).
- ``mass`` of size eps: the first round(eps n) rows (a fair subsample: the rows are in a seeded
  random order, ``scorew2.data``) move to the origin, x -> x - c sign(x), keeping their offset
  from their centre. Mass lands where p0 has (numerically) none, so KL(p0~ || p0) is
  enormous (and infinite between the empirical laws) while W2(p0, p0~)^2 <= 2 c^2 eps, the
  cost of that same coupling. Theorem 3 needs only the triangle inequality of W2, which KL
  lacks.

A perturbed set is named ``{base}-{family}{size!r}`` (``four_clusters-shift0.1``):
``variant_name`` writes the name and ``parse_variant`` reads it back. No torch here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scorew2._checks import as_points, check_choice

__all__ = [
    "CLUSTER_SETS",
    "PERTURBATIONS",
    "parse_variant",
    "perturb",
    "variant_name",
    "variants",
]

#: The perturbation families, in the order tables and figures show them.
PERTURBATIONS = ("shift", "mass")
#: The data sets the perturbations apply to (clusters centred at (+-c, +-c)).
CLUSTER_SETS = ("four_clusters", "imbalanced_clusters")

_NAME = re.compile(r"^(?P<base>[a-z_]+)-(?P<family>shift|mass)(?P<size>[0-9.e+-]+)$")


def variant_name(base: str, family: str, size: float) -> str:
    """The name of ``base`` perturbed by ``family`` of ``size``: ``{base}-{family}{size!r}``
    (the float's repr, so two different sizes never share a name)."""
    check_choice(family, PERTURBATIONS, "perturbation")
    return f"{base}-{family}{float(size)!r}"


def parse_variant(name: str) -> tuple[str, str, float] | None:
    """(base, family, size) of a perturbed set's name, or None for a plain data set name."""
    m = _NAME.match(name)
    return None if m is None else (m["base"], m["family"], float(m["size"]))


def variants(bases: Sequence[str], perturbations: Mapping[str, Sequence[float]]) -> list[str]:
    """The perturbed sets of every base: base-major, families in ``PERTURBATIONS`` order, sizes
    in the given order."""
    return [
        variant_name(b, f, s)
        for b in bases
        for f in PERTURBATIONS
        for s in perturbations.get(f, ())
    ]


def perturb(x: Any, family: str, size: float, center: float) -> np.ndarray:
    """p0~: the points ``x`` (n, 2) of a cluster set with centres (+-center, +-center)
    perturbed by ``family`` of ``size`` (see the module docstring). Returns a new array.

    Raises ValueError for an unknown family, a non-finite or negative size, a mass fraction
    above 1, a non-positive centre or points that are not a finite (n, 2) array.
    """
    check_choice(family, PERTURBATIONS, "perturbation")
    pts = as_points(x, "x", dim=2).copy()
    size, center = float(size), float(center)
    if not np.isfinite(size) or size < 0:
        raise ValueError(f"size: expected a finite number >= 0, got {size}")
    if not np.isfinite(center) or center <= 0:
        raise ValueError(f"center: expected a finite number > 0, got {center}")
    if family == "shift":
        moved = (pts[:, 0] > 0) & (pts[:, 1] > 0)
        pts[moved, 0] += size
    else:
        if size > 1:
            raise ValueError(f"size: a mass fraction is at most 1, got {size}")
        k = round(size * len(pts))
        pts[:k] -= center * np.sign(pts[:k])
    return pts
