"""Input checks shared by every module: one place that turns bad input into a clear ValueError."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_points", "check_choice", "to_numpy"]


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor or nested sequence) as a float64 numpy array.

    Torch is not imported here (numpy-only steps of the pipeline start faster without it): a
    tensor is recognised by its ``detach`` method.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: cannot be read as an array of numbers ({err})") from err
    return arr


def as_points(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    """Validate a point cloud: a finite float64 array of shape (n, d) with n >= 1.

    Raises ValueError naming ``name`` when the shape is wrong, the set is empty or a
    value is NaN or infinite.
    """
    arr = to_numpy(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (n, d), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty point set")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} coordinates per point, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name}: {bad} point(s) contain NaN or infinite values")
    return arr


def check_choice(value: str, allowed: tuple[str, ...] | list[str], name: str) -> str:
    """Raise ValueError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value
