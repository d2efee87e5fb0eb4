"""The L_s estimators' input paths (scorew2.lipschitz): numpy, tensor and nested-list points,
the dtype a field is evaluated in, chunk boundaries, and each refusal with its message.

Written against the survivors of the mutation run (tests/mutation/report.md): each test pins
a behaviour that a changed comparison, index, default or message would break.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from scorew2.lipschitz import (
    jacobian_sym_eigs,
    one_sided_lipschitz,
    pairs_max_ratio,
    paper_grid,
    region_grid,
)

A = torch.tensor([[0.3, 2.0], [-1.0, -0.5]], dtype=torch.float64)
TOP = float(torch.linalg.eigvalsh(0.5 * (A + A.T))[-1])  # sup of the linear field x -> A x


def linear(x: torch.Tensor) -> torch.Tensor:
    return x @ A.T.to(x.dtype)


def batched_linear(x: torch.Tensor) -> torch.Tensor:
    return linear(x)


def dtype_spy(seen: list[torch.dtype]):
    def field(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.dtype)
        return linear(x)

    return field


def small_cloud(n: int = 12, seed: int = 3) -> np.ndarray:
    """Points within 0.5 of each other (every |x_i - x_j|^2 < 1)."""
    return np.random.default_rng(seed).uniform(0.0, 0.35, size=(n, 2))


def test_one_point_is_enough_for_the_jacobian_estimate() -> None:
    one = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    assert one_sided_lipschitz(linear, one, method="jacobian") == pytest.approx(TOP, abs=1e-12)
    eig = jacobian_sym_eigs(batched_linear, one, n_fields=1)
    assert eig.shape == (1, 1) and float(eig[0, 0]) == pytest.approx(TOP, abs=1e-12)


@pytest.mark.parametrize("method", ["pairs", "jacobian"])
def test_numpy_list_and_tensor_points_agree(method: str) -> None:
    pts = small_cloud()
    values = [
        one_sided_lipschitz(linear, p, method=method)
        for p in (pts, pts.tolist(), torch.as_tensor(pts), torch.as_tensor(pts).float())
    ]
    assert values[:3] == [values[0]] * 3
    pts_values = (torch.as_tensor(pts) @ A.T).numpy()
    exact = TOP if method == "jacobian" else brute_force_pairs(pts_values, pts)  # <= TOP
    assert values[0] == pytest.approx(exact, abs=1e-12) and exact <= TOP + 1e-12
    assert values[3] == pytest.approx(exact, abs=1e-6)


@pytest.mark.parametrize("method", ["pairs", "jacobian"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_the_field_sees_the_dtype_asked_for(method: str, as_tensor: bool) -> None:
    pts = small_cloud()
    pts = torch.as_tensor(pts) if as_tensor else pts
    for dtype in (torch.float32, torch.float64):
        seen: list[torch.dtype] = []
        one_sided_lipschitz(dtype_spy(seen), pts, method=method, dtype=dtype)
        assert seen and set(seen) == {dtype}


def test_jacobian_sym_eigs_casts_points_to_dtype() -> None:
    pts = small_cloud()
    for points in (pts, torch.as_tensor(pts), pts.tolist()):
        seen: list[torch.dtype] = []
        out = jacobian_sym_eigs(dtype_spy(seen), points, n_fields=2, dtype=torch.float32)
        assert set(seen) == {torch.float32} and out.shape == (2, len(pts))
        assert out.dtype == torch.float64
    seen = []
    jacobian_sym_eigs(dtype_spy(seen), torch.as_tensor(pts).float(), n_fields=1)
    assert set(seen) == {torch.float64}  # the default dtype, whatever the points' own


def test_jacobian_sym_eigs_shapes() -> None:
    pts = torch.as_tensor(small_cloud(5))
    k_n_d = pts.unsqueeze(0).expand(3, -1, -1)
    for n_fields in (None, 3):
        out = jacobian_sym_eigs(batched_linear, k_n_d, n_fields=n_fields)
        assert out.shape == (3, 5)
        torch.testing.assert_close(out, torch.full((3, 5), TOP, dtype=torch.float64))
    # one coordinate: the field x -> -2 x has L_s = -2 everywhere
    out = jacobian_sym_eigs(lambda x: -2.0 * x, torch.ones(4, 1, dtype=torch.float64), n_fields=1)
    torch.testing.assert_close(out, torch.full((1, 4), -2.0, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(points=np.zeros((2, 3, 4, 2))),
            "points: expected shape (n, d) or (K, n, d), got (2, 3, 4, 2)",
        ),
        (
            dict(points=np.zeros((4, 2)), n_fields=0),
            "n_fields: required (an integer >= 1) when points are (n, d)",
        ),
        (dict(points=np.zeros((4, 2)), n_fields=True), "n_fields: required (an integer >= 1)"),
        (dict(points=np.zeros((4, 2))), "n_fields: required (an integer >= 1)"),
        (dict(points=np.zeros((3, 4, 2)), n_fields=2), "n_fields: 2 does not match points' K = 3"),
        (dict(points=np.zeros((3, 0, 2)), n_fields=3), "points: empty point set, shape (3, 0, 2)"),
        (dict(points=np.zeros((3, 4, 0))), "points: empty point set, shape (3, 4, 0)"),
        (dict(points=np.full((1, 4, 2), np.inf)), "points: contains NaN or infinite values"),
        (dict(points=[["a", "b"]], n_fields=1), "points: cannot be read as an array of numbers"),
    ],
)
def test_jacobian_sym_eigs_refusals(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + re.escape(message)):
        jacobian_sym_eigs(batched_linear, **kwargs)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (torch.zeros(3), "points: expected shape (n, d), got (3,)"),
        (torch.zeros(0, 2), "points: expected shape (n, d), got (0, 2)"),
        (torch.tensor([[0.0, math.nan]]), "points: contains NaN or infinite values"),
        (np.zeros(3), "points: expected shape (n, d), got (3,)"),
        (np.zeros((0, 2)), "points: empty point set"),
    ],
)
def test_one_sided_lipschitz_point_refusals(points, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + re.escape(message)):
        one_sided_lipschitz(linear, points)


def test_field_refusals_name_the_field_and_what_it_returned() -> None:
    pts = small_cloud(4)
    with pytest.raises(
        ValueError, match=re.escape("field: must map a (4, 2) tensor to the same shape, got (4, 1)")
    ):
        one_sided_lipschitz(lambda x: x[:, :1], pts)
    with pytest.raises(ValueError, match=r"^field: must map .* got list$"):
        one_sided_lipschitz(lambda x: x.tolist(), pts)
    with pytest.raises(ValueError, match=r"^unknown method 'hessian'"):
        one_sided_lipschitz(linear, pts, method="hessian")


def test_pairs_max_ratio_inputs() -> None:
    x = small_cloud()
    v = (torch.as_tensor(x) @ A.T).numpy()
    ref = pairs_max_ratio(torch.as_tensor(v), torch.as_tensor(x))
    assert ref == pytest.approx(brute_force_pairs(v, x), rel=1e-12)
    assert pairs_max_ratio(v, x) == ref and pairs_max_ratio(v.tolist(), x.tolist()) == ref
    # float32 values are compared as float64 numbers: differences formed after the cast
    v32 = torch.as_tensor(v).float()
    assert pairs_max_ratio(v32, x) == pairs_max_ratio(v32.double(), x)
    assert math.isnan(pairs_max_ratio(np.where(np.arange(24).reshape(12, 2) == 5, np.nan, v), x))
    with pytest.raises(ValueError, match=re.escape("values: expected shape (12, 2), got (12, 3)")):
        pairs_max_ratio(np.zeros((12, 3)), x)
    with pytest.raises(ValueError, match=r"^values: cannot be read as an array of numbers"):
        pairs_max_ratio([["a", "b"]] * 12, x)
    with pytest.raises(ValueError, match=r"^points: need at least two distinct points"):
        pairs_max_ratio(np.zeros((3, 2)), np.ones((3, 2)))


def brute_force_pairs(v: np.ndarray, x: np.ndarray) -> float:
    """max over i != j of (v_i - v_j) . (x_i - x_j) / |x_i - x_j|^2, pair by pair."""
    n = len(x)
    return max(
        float((v[i] - v[j]) @ (x[i] - x[j]) / ((x[i] - x[j]) @ (x[i] - x[j])))
        for i in range(n)
        for j in range(n)
        if i != j
    )


@pytest.mark.parametrize("chunk_elems", [1, 5, 12, 4_000_000])
@pytest.mark.parametrize("where", [0, 6, 11])
def test_pairs_max_ratio_finds_the_pair_wherever_it_is(chunk_elems: int, where: int) -> None:
    """Every pair is compared, among close points (|dx|^2 < 1), n != d, whatever the
    chunking: the largest ratio involves point ``where`` (the first, a middle or the last
    row), whose value alone is moved off the field v = -x (every other pair: ratio -1)."""
    x = small_cloud()
    v = -x.copy()
    v[where] += 4.0 * (x[where] - x.mean(0))
    ref = brute_force_pairs(v, x)
    assert ref > 0  # so it comes from a pair with point `where`
    assert pairs_max_ratio(v, x, chunk_elems=chunk_elems) == pytest.approx(ref, rel=1e-12)


def test_region_grid_defaults_and_refusals() -> None:
    pts = small_cloud()
    assert region_grid(pts).shape == (64 * 64, 2)
    assert region_grid(pts, n_per_axis=2).shape == (4, 2)
    assert region_grid(pts.tolist(), n_per_axis=np.int64(3)).shape == (9, 2)
    for bad, message in [
        (2.5, "n_per_axis: expected an integer >= 2, got 2.5"),
        (True, "n_per_axis: expected an integer >= 2, got True"),
        (1, "n_per_axis: expected an integer >= 2, got 1"),
    ]:
        with pytest.raises(ValueError, match=r"^" + re.escape(message)):
            region_grid(pts, n_per_axis=bad)
    for margin in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^margin: expected a finite number >= 0"):
            region_grid(pts, margin=margin)
    with pytest.raises(ValueError, match=r"^points: expected shape"):
        region_grid(np.zeros(3))


def test_paper_grid_is_float64_on_the_exact_points() -> None:
    p = paper_grid()
    assert p.dtype == torch.float64
    expected = np.array([[i / 10, j / 10] for i in range(10) for j in range(10)])
    np.testing.assert_allclose(p.numpy(), expected, rtol=0, atol=1e-15)
