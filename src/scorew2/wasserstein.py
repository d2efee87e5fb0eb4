"""Exact 2-Wasserstein distance between point clouds, with a certificate of optimality.

For point sets x (n, d) and y (m, d) with uniform weights a_i = 1/n and b_j = 1/m,

    W2(x, y)^2 = min_{P >= 0, P 1 = a, P^T 1 = b} sum_ij P_ij c_ij,   c_ij = |x_i - y_j|^2,

the distance in W2(p0, q0) and W2(p_T, q_T) of Theorem 1 / Corollary 1 of the paper. Its LP
dual is max a.u + b.v subject to u_i + v_j <= c_ij for ALL pairs (i, j).

- ``w2_emd``: POT's network simplex (``ot.emd2``) on the full n x m cost matrix: the baseline
  and the reference.
- ``w2`` / ``w2_certified``: the same LP on a sparse set of candidate pairs (POT's sparse network
  simplex, warm-started), proven optimal for the FULL problem. The sparse plan P is feasible, so
  its cost is an upper bound. With r_ij = c_ij - u_i - v_j for the sparse duals, the c-transform
  u'_i = u_i + min_j r_ij makes (u', v) feasible for every pair, so by weak duality

      a.u + b.v + sum_i a_i min_j r_ij  <=  W2^2  <=  sum_ij P_ij c_ij.

  The minima run over all n m pairs (a blocked matrix product). Pairs with r_ij < -tol are
  added and the sparse LP re-solved until the two bounds agree to _GAP_RTOL (relative), or to
  _GAP_RTOL_STUCK when every violated pair is already a candidate (POT's floating-point limit
  on problems of 10^5 points; ``W2Result.gap_rtol`` says which was proven). On square problems
  of _ASSIGNMENT_MIN points or more, a solve whose candidate set grew a lot starts POT's simplex
  from the optimal assignment of the candidates, found by OR-Tools' cost-scaling assignment
  solver (Goldberg-Kennedy) on integer-rounded costs; POT then proves it exactly or improves it.
- ``w2_many`` / ``w2_many_certified``: one fixed set against a sequence of similar sets (the
  checkpoints' samples, common random numbers), each problem warm-started from the previous
  one's plan and duals, each value certified as above (cold path when the warm start fails).
  POT's dense ``ot.emd`` also accepts starting potentials (potentials_init); the warm sparse
  path gains more (benchmarks/README.md).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

# scorew2/__init__.py sets POT_BACKEND_DISABLE_PYTORCH=1 (unless the caller set it) before POT
# is first imported: this module hands POT numpy arrays only, and POT's torch backend would
# import torch into jobs that need none (benchmarks/README.md).
import ot
from ortools.graph.python.linear_sum_assignment import SimpleLinearSumAssignment
from ot.lp.emd_wrap import emd_c_sparse
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import (
    breadth_first_order,
    connected_components,
    minimum_spanning_tree,
)
from scipy.spatial import cKDTree

from scorew2._checks import as_points, to_numpy

__all__ = ["W2Result", "w2", "w2_certified", "w2_emd", "w2_many", "w2_many_certified"]

_EPS = np.finfo(np.float64).eps
# Problems with n * m at most this size go straight to the dense network simplex.
_DENSE_MAX_PAIRS = 1500 * 1500
# Coarse level: cells of about this many points.
_GROUP = 8
# Reduced-cost tolerance, relative to the scale of |x|^2, |y|^2, |u|, |v| (see _scale).
_REL_TOL = 1e-11
# Certificate: accept when W2^2 - lower bound <= _GAP_RTOL * W2^2 (+ rounding allowance).
_GAP_RTOL = 1e-10
# ... or, when every violated pair is already a candidate (POT's network simplex cannot
# improve the plan further: its potentials carry an offset of about (n + m) max c_ij, which
# costs their low bits; seen at n = 50,000), <= _GAP_RTOL_STUCK * W2^2.
_GAP_RTOL_STUCK = 1e-9
_K_NN = 8  # nearest neighbours per point (both ways) in the first candidate set
_K_LOCAL = 32  # neighbours of a point's partner examined by the local search
_MAX_ROUNDS = 200
# Square uniform problems with at least this many points per side start POT's network simplex
# from the optimal assignment of the candidate pairs (_assignment_start) whenever the candidate
# set is at least _ASSIGNMENT_GROWTH larger than the one the starting duals were optimal for.
# It pays from n = 10,000 (whole solve 1.05-1.3x faster there, 1.3-1.6x at 20,000, 1.8-2.1x
# at 50,000; 0.87-1.0x at 2,000-5,000: benchmarks/README.md), so the pipeline's n = 2,000
# problems keep the plain path.
_ASSIGNMENT_MIN = 10_000
_ASSIGNMENT_GROWTH = 0.05
# w2_many: a warm start that needs more rounds than this is abandoned for the cold path
_WARM_MAX_ROUNDS = 12
_K_WARM = 8  # w2_many: pairs (i, j') with j' among the _K_WARM neighbours of i's old partner
# float64 entries per block of the all-pairs check: 256 KiB blocks stay in cache
# (benchmarks/README.md); at least _MIN_BLOCK_ROWS rows: one-row blocks take BLAS's
# matrix-vector path, 2x slower at m = 50,000
_CHUNK_ELEMENTS = 1 << 15
_MIN_BLOCK_ROWS = 8
# result codes of POT's network simplex
_RESULT = {0: "infeasible", 1: "optimal", 2: "unbounded", 3: "iteration limit reached"}


@dataclasses.dataclass(frozen=True)
class W2Result:
    """Exact W2 with the evidence of its optimality.

    value: W2 = sqrt(cost). cost: optimal transport cost W2^2 (the plan's cost).
    lower_bound: certified dual lower bound on W2^2 (weak duality over all pairs).
    gap: cost - lower_bound (>= 0 up to rounding). min_reduced_cost: min over ALL pairs of
    c_ij - u_i - v_j for the final duals. n_rounds: sparse solves at the finest level.
    n_candidate_pairs: pairs in the final sparse problem (n m for the dense path).
    n_added_pairs: pairs added at the finest level because their reduced cost was negative.
    n_added_by_full_check: of these, pairs found only by the dense all-pairs check.
    n_levels: levels of the multiscale hierarchy (1: dense or warm-started solve).
    method: "dense", "sparse" (multiscale), "warm" (``w2_many``: warm-started from the
    previous problem of the sequence) or "emd" (``w2_many``'s fallback to ``w2_emd`` when no
    certificate closed; bounds NaN). warm_fallback: ``w2_many`` tried a warm start, it did
    not close within _WARM_MAX_ROUNDS rounds, and the cold path (``method``) solved it.
    gap_rtol: the relative gap proven, gap <= gap_rtol cost + rounding: _GAP_RTOL, or
    _GAP_RTOL_STUCK when POT's network simplex could not improve a plan that every violated
    pair was already a candidate of (NaN for method "emd").
    """

    value: float
    cost: float
    lower_bound: float
    gap: float
    min_reduced_cost: float
    n_rounds: int
    n_candidate_pairs: int
    n_added_pairs: int
    n_added_by_full_check: int
    n_levels: int
    method: str
    warm_fallback: bool = False
    gap_rtol: float = _GAP_RTOL


# --------------------------------------------------------------------------- input and costs


def _inputs(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate both sets and bring them to the solver's frame (``_frame``)."""
    xa = as_points(x, "x")
    ya = as_points(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(
            f"y: expected {xa.shape[1]} coordinates per point like x, got {ya.shape[1]}"
        )
    return _frame(xa, ya)


def _frame(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(f (x - c), f (y - c), f): a common centre c and an exact power-of-two factor f.

    W2(f (x - c), f (y - c)) = f W2(x, y), so the solver works in this frame and its results
    are divided by f (costs by f^2). Centring, c = (mean x + mean y) / 2, keeps |x|^2 small,
    which keeps the all-pairs check c_ij = |x_i|^2 + |y_j|^2 - 2 x_i.y_j accurate. The factor:
    with R = max(|x_i - c|^2, |y_j - c|^2), f = 2^ceil(-log2(R) / 2) puts f^2 R in [1, 4)
    when 0 < R < 1, and f = 1 otherwise. POT's network simplex compares reduced costs with an
    absolute tolerance (about 2e-15), the certificate with one relative to R: on small sets
    (R below about 4e-4) the simplex stops at a plan that the certificate rightly rejects.
    Multiplying by a power of two is exact, so nothing else changes.
    """
    centre = 0.5 * (x.mean(axis=0) + y.mean(axis=0))
    x, y = x - centre, y - centre
    r = max(float(np.einsum("nd,nd->n", x, x).max()), float(np.einsum("nd,nd->n", y, y).max()))
    if not 0.0 < r < 1.0:
        return x, y, 1.0
    f = float(2.0 ** np.ceil(-0.5 * np.log2(r)))
    return x * f, y * f, f


def _pair_costs(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """c_ij = |x_i - y_j|^2 for the listed pairs, computed from coordinate differences.

    The rows are gathered with ``take`` (2.4x faster than x[rows] for (n, 2) arrays, same
    values: benchmarks/README.md).
    """
    diff = x.take(rows, axis=0) - y.take(cols, axis=0)
    return np.einsum("kd,kd->k", diff, diff)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """np.unique(keys) by sorting: numpy 2.4's np.unique hashes integers, 10x slower on 10^6
    distinct int64 pair keys (numpy issue #31969); same sorted values."""
    keys = np.sort(keys)
    first = np.empty(keys.size, dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


def _uniform(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


# --------------------------------------------------------------------------- network simplex


def _iteration_limits(n_arcs: int) -> tuple[int, ...]:
    """numItermax schedule: proportional to the number of arcs, then 20x more."""
    first = max(100_000, 10 * n_arcs)
    return (first, 20 * first)


def _emd_dense(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, dict]:
    """Dense network simplex (ot.emd) with a raised iteration limit; never unconverged."""
    for limit in _iteration_limits(cost.size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.emd(a, b, cost, numItermax=limit, log=True)
        if log["result_code"] == 1:
            return plan, log
        if log["result_code"] != 3:  # 3: iteration limit reached; anything else is fatal
            break
    raise RuntimeError(
        f"exact W2: network simplex did not reach optimality ({log['warning']}; "
        f"numItermax={limit}, {cost.shape[0]}x{cost.shape[1]} problem)"
    )


def _balanced(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The duals shifted to (u - s, v + s), s = (mid(u) - mid(v)) / 2, mid = (max + min) / 2.

    Every u_i + v_j, hence every reduced cost, is unchanged; only the common offset goes. The
    network simplex's potentials carry the offset of its artificial root arcs, about
    (n + m) max c_ij (seen: u near +5.0e9, v near -5.0e9 for costs up to 1.3e6), and _scale,
    every tolerance and the rounding of r_ij = c_ij - u_i - v_j grow with it. After the shift
    max |u| + max |v| is as small as a common offset can make it.
    """
    s = 0.25 * (u.max() + u.min() - v.max() - v.min())
    return u - s, v + s


def _emd_sparse(
    a: np.ndarray,
    b: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    cost: np.ndarray,
    u0: np.ndarray | None,
    v0: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse network simplex on the listed arcs, warm-started from potentials (u0, v0).

    Returns the plan as (rows, cols, flows) and the duals (u, v) of the sparse problem,
    ``_balanced``.
    """
    r64 = rows.astype(np.uint64)
    c64 = cols.astype(np.uint64)
    for limit in _iteration_limits(len(rows)):
        fr, fc, fv, _, u, v, code = emd_c_sparse(a, b, r64, c64, cost, limit, u0, v0)
        if code == 1:
            return fr.astype(np.int64), fc.astype(np.int64), fv, *_balanced(u, v)
        if code != 3:
            break
    raise RuntimeError(
        f"exact W2: sparse network simplex did not reach optimality ({_RESULT[code]}; "
        f"numItermax={limit}, {len(rows)} arcs)"
    )


def _assignment_start(
    rows: np.ndarray, cols: np.ndarray, cost: np.ndarray, v: np.ndarray
) -> np.ndarray | None:
    """Starting potentials u for the sparse network simplex from the optimal assignment.

    With uniform weights a_i = b_j = 1/n an optimal plan of the candidate pairs is a
    permutation sigma minimising sum_i c_{i sigma(i)} (Birkhoff). OR-Tools' cost-scaling
    solver finds sigma exactly for the integer costs round(c_ij S), S a power of two with
    S max c_ij <= 2^(60 - 2 log2(n + 1)) (OR-Tools refuses ranges near 2^(63 - 2 log2 n) as a
    possible overflow: 2^34 at n = 20,000), so sigma is optimal for c up to n rounding steps
    1/S. Returns u_i = c_{i sigma(i)} - v_{sigma(i)} for the given v (the last round's duals):
    exactly the arcs of sigma are tight, so POT's warm start builds its first basis from
    them and its simplex only finishes the exact optimum from sigma's flows (keeping v or
    setting v = 0 made no difference beyond noise at n = 20,000). None when the solver
    reports no optimal assignment (the caller keeps its own potentials).
    """
    n = len(v)
    bits = np.floor(60.0 - 2.0 * np.log2(n + 1.0))
    scale = 2.0 ** np.floor(bits - np.log2(max(float(cost.max()), 1e-300)))
    solver = SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows, cols, np.rint(cost * scale).astype(np.int64))
    if solver.solve() != solver.OPTIMAL:
        return None
    # OR-Tools returns the mates one node at a time (no array accessor); 5 ms at n = 20,000
    mate = np.fromiter((solver.right_mate(i) for i in range(n)), dtype=np.int64, count=n)
    on_mate = cols == mate[rows]
    u = np.empty(n)
    u[rows[on_mate]] = cost[on_mate] - v[cols[on_mate]]
    return u


def _assignment_pays(a: np.ndarray, b: np.ndarray, n_pairs: int, solved_pairs: int) -> bool:
    """Whether ``_assignment_start`` is used: a square problem of uniform weights with at
    least _ASSIGNMENT_MIN points per side whose candidate set has grown by _ASSIGNMENT_GROWTH
    or more since the ``solved_pairs`` pairs its starting duals are optimal for (0: none)."""
    return (
        len(a) == len(b) >= _ASSIGNMENT_MIN
        and n_pairs >= (1.0 + _ASSIGNMENT_GROWTH) * solved_pairs
        and bool(np.all(a == a[0]))
        and bool(np.all(b == b[0]))
    )


# --------------------------------------------------------------------------- geometry helpers


def _coarsen(x: np.ndarray, w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the points into cells of about ``group`` points by median-style cuts per axis.

    Along each of d' axes in turn every cell is cut into s equal-count slabs, s =
    ceil(k^(1/d')) with k = n / group cells in all. d' = d when d <= log2 k; otherwise
    d' = ceil(log2 k) axes of the largest spread, in axis order (halving every cell along all
    d axes would leave cells of one point, and no coarser problem). Returns (labels (n,),
    centroids (K, d), masses (K,)), the centroid being the w-weighted mean of the cell.
    """
    n, d = x.shape
    cells = n / group
    axes = np.arange(d)
    if d > np.log2(max(cells, 2.0)):
        keep = int(np.ceil(np.log2(max(cells, 2.0))))
        axes = np.sort(np.argsort(-x.var(axis=0), kind="stable")[:keep])
    splits = max(2, int(np.ceil(cells ** (1.0 / len(axes)))))
    labels = np.zeros(n, dtype=np.int64)
    for k in axes:
        order = np.lexsort((x[:, k], labels))
        sizes = np.bincount(labels, minlength=labels.max() + 1)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        lab_sorted = labels[order]
        rank = np.arange(n) - starts[lab_sorted]
        part = (rank * splits) // sizes[lab_sorted]
        new = np.empty(n, dtype=np.int64)
        new[order] = lab_sorted * splits + part
        labels = np.unique(new, return_inverse=True)[1]
    masses = np.bincount(labels, weights=w)
    cent = np.stack([np.bincount(labels, weights=w * x[:, k]) for k in range(d)], axis=1)
    return labels, cent / masses[:, None], masses


def _members(labels: np.ndarray, n_cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points grouped by cell: (order, sizes, starts) with cell c = order[starts[c]:][:sizes[c]]."""
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=n_cells)
    return order, sizes, np.cumsum(sizes) - sizes


def _refine_arcs(
    lx: np.ndarray, ly: np.ndarray, n_x: int, n_y: int, cr: np.ndarray, cc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All point pairs (i, j) with i in cell cr[k] and j in cell cc[k], for every coarse arc k."""
    ox, sx, stx = _members(lx, n_x)
    oy, sy, sty = _members(ly, n_y)
    count = sx[cr] * sy[cc]
    arc = np.repeat(np.arange(len(cr)), count)
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    width = sy[cc][arc]
    return ox[stx[cr][arc] + offset // width], oy[sty[cc][arc] + offset % width]


def _northwest_arcs(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple:
    """Support (n + m - 1 arcs) of the north-west-corner plan between both sets sorted
    lexicographically: a feasible plan, so the sparse problem is never infeasible."""
    ox = np.lexsort(x.T[::-1])
    oy = np.lexsort(y.T[::-1])
    ca = np.cumsum(a[ox])[:-1]
    cb = np.cumsum(b[oy])[:-1]
    breaks = np.unique(np.concatenate(([0.0], ca, cb)))
    i = np.minimum(np.searchsorted(ca, breaks, side="right"), len(a) - 1)
    j = np.minimum(np.searchsorted(cb, breaks, side="right"), len(b) - 1)
    return ox[i], oy[j]


def _scale(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    """Magnitude of the terms of c_ij - u_i - v_j: rounding errors are eps times this."""
    sx = float(np.einsum("nd,nd->n", x, x).max())
    sy = float(np.einsum("nd,nd->n", y, y).max())
    return max(sx + sy + float(np.abs(u).max()) + float(np.abs(v).max()), 1e-300)


def _exact_potentials(
    x: np.ndarray,
    y: np.ndarray,
    support: tuple[np.ndarray, np.ndarray],
    arcs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    u: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Recompute the duals so that u_i + v_j = c_ij holds to rounding on a spanning tree.

    The network simplex updates its potentials incrementally and they drift after many pivots
    (seen: reduced costs of -8e-11 at n = 8000, where the plan is a permutation whose n
    support arcs are n separate trees tied together only by zero-flow basis arcs). The tree:
    all support arcs, joined by the tightest other candidate arcs (|r_ij| <= 1e-8 * scale), as a
    minimum spanning forest (support arcs weigh least); ``_tree_potentials`` on it.
    ``support`` is the plan's (rows, cols), a subset of the candidates; ``arcs`` all candidate
    (keys, rows, cols, costs), keys = rows * m + cols strictly ascending (as ``_sparse_rounds``
    keeps them, so the support is found by binary search).
    Returns (u, v, tree), tree = the forest's arcs as (rows, cols).
    """
    n, m = len(x), len(y)
    keys, rows, cols, arc_costs = arcs
    rc = np.abs(arc_costs - u[rows] - v[cols])
    on_support = np.zeros(len(keys), dtype=bool)
    on_support[np.searchsorted(keys, support[0] * m + support[1])] = True
    tight = (rc <= 1e-8 * _scale(x, y, u, v)) & ~on_support
    weight = np.concatenate(
        [np.ones(len(support[0])), 2.0 + rc[tight] / (rc[tight].max(initial=0.0) + 1e-300)]
    )
    er = np.concatenate([support[0], rows[tight]])
    ec = np.concatenate([support[1], cols[tight]]) + n
    tree = minimum_spanning_tree(coo_matrix((weight, (er, ec)), shape=(n + m, n + m)).tocsr())
    tree = tree.tocoo()  # a subgraph of the input: every arc keeps row x < col n + j
    forest = (tree.row.astype(np.int64), tree.col.astype(np.int64) - n)
    return *_tree_potentials(x, y, forest, u, v), forest


def _tree_potentials(
    x: np.ndarray,
    y: np.ndarray,
    forest: tuple[np.ndarray, np.ndarray],
    u: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Duals with u_i + v_j = c_ij exactly (to rounding) on every arc (i, j) of ``forest``.

    One root per tree of the forest keeps its value in (u, v); every other node gets
    pot(node) = c(node, parent) - pot(parent), evaluated by pointer jumping (log2(depth)
    vectorised steps). Nodes 0..n-1 are x, n..n+m-1 are y.
    """
    n, m = len(x), len(y)
    graph = coo_matrix(
        (np.ones(len(forest[0])), (forest[0], forest[1] + n)), shape=(n + m, n + m)
    ).tocsr()
    n_comp, comp = connected_components(graph, directed=False)
    roots = np.unique(comp, return_index=True)[1]
    # a virtual node n + m joined to one root per tree makes the forest one tree
    tr = np.concatenate([forest[0], np.full(n_comp, n + m)])
    tc = np.concatenate([forest[1] + n, roots])
    joined = csr_matrix((np.ones(len(tr)), (tr, tc)), shape=(n + m + 1, n + m + 1))
    _, parent = breadth_first_order(joined, n + m, directed=False, return_predecessors=True)
    node = np.arange(n + m)
    is_root = parent[: n + m] == n + m
    parent = np.where(is_root, node, parent[: n + m])
    xi = np.where(is_root, 0, np.where(node < n, node, parent))  # x end of (node, parent)
    yj = np.where(is_root, 0, np.where(node < n, parent, node) - n)
    pot = np.where(is_root, np.concatenate([u, v]), _pair_costs(x, y, xi, yj))
    sign = np.where(is_root, 0.0, -1.0)
    ptr = parent
    while np.any(sign != 0.0):  # invariant: potential(node) = pot + sign * potential(ptr)
        pot = pot + sign * pot[ptr]
        sign = sign * sign[ptr]
        ptr = ptr[ptr]
    return pot[:n], pot[n:]


# --------------------------------------------------------------------------- certificate


def _full_check(
    x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row minima over ALL pairs of r_ij = c_ij - u_i - v_j, and each row's worst pair.

    r_ij = (|x_i|^2 - u_i) + (|y_j|^2 - v_j) - 2 x_i.y_j is one matrix product of augmented
    (n, d + 2) and (d + 2, m) factors, evaluated in row blocks of _CHUNK_ELEMENTS entries and
    at least _MIN_BLOCK_ROWS rows (never more than one block in memory). Returns (row_min (n,),
    rows, cols): the rows whose minimum is below -tol and the column where it is attained.
    """
    n, m = len(x), len(y)
    left = np.hstack([x, np.ones((n, 1)), (np.einsum("nd,nd->n", x, x) - u)[:, None]])
    right = np.hstack([-2.0 * y, (np.einsum("nd,nd->n", y, y) - v)[:, None], np.ones((m, 1))])
    right_t = np.ascontiguousarray(right.T)
    step = max(_MIN_BLOCK_ROWS, _CHUNK_ELEMENTS // m)
    row_min = np.empty(n)
    row_arg = np.zeros(n, dtype=np.int64)
    for s in range(0, n, step):
        block = left[s : s + step] @ right_t
        block.min(axis=1, out=row_min[s : s + step])
        if row_min[s : s + step].min() < -tol:  # the columns only where a row is violated
            row_arg[s : s + step] = block.argmin(axis=1)
    bad = np.flatnonzero(row_min < -tol)
    return row_min, bad, row_arg[bad]


def _add_pairs(
    x: np.ndarray, y: np.ndarray, keys: np.ndarray, costs: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge pair keys i * m + j into the sorted ``keys`` (with their costs); count the new."""
    m = len(y)
    new = _sorted_unique(new)
    pos = np.searchsorted(keys, new)
    fresh = new[(pos == len(keys)) | (keys[np.minimum(pos, len(keys) - 1)] != new)]
    if fresh.size == 0:
        return keys, costs, 0
    order = np.argsort(np.concatenate([keys, fresh]), kind="stable")
    merged_costs = np.concatenate([costs, _pair_costs(x, y, *np.divmod(fresh, m))])
    return np.concatenate([keys, fresh])[order], merged_costs[order], fresh.size


@dataclasses.dataclass
class _Solution:
    """A plan (rows, cols, flows), its duals (u, v), the spanning forest (rows, cols) on which
    they are exact (None from the dense solver) and how it was found."""

    rows: np.ndarray
    cols: np.ndarray
    flows: np.ndarray
    u: np.ndarray
    v: np.ndarray
    n_levels: int
    n_rounds: int = 1
    n_pairs: int = 0
    n_added: int = 0
    n_added_full: int = 0
    cost: float = np.nan
    lower: float = np.nan
    min_rc: float = np.nan
    scale: float = np.nan
    gap_rtol: float = _GAP_RTOL
    forest: tuple[np.ndarray, np.ndarray] | None = None

    def allowance(self, rtol: float) -> float:
        """Gap accepted as proof: rtol * cost + 256 eps * scale (the check's own rounding)."""
        return rtol * abs(self.cost) + 256 * _EPS * self.scale


def _certify(
    x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, sol: _Solution
) -> tuple[bool, np.ndarray, np.ndarray]:
    """All-pairs optimality check of ``sol`` (fills sol.cost, sol.lower, sol.min_rc, sol.scale).

    Upper bound: the plan's cost sum_k f_k c_k. Lower bound (weak duality): u'_i = u_i +
    min_j r_ij (the c-transform of v) makes (u', v) feasible for every pair, so
    a.u + b.v + sum_i a_i min_j r_ij <= W2^2, less 64 eps * scale for the check's own rounding.
    Returns (proven, rows, cols): proven when the gap is below the allowance _GAP_RTOL * cost +
    256 eps * scale, else the violated pairs to add: each row's worst pair where r_ij is below
    -min(_REL_TOL * scale, allowance / 2) (rows within that contribute at most half the
    allowance to the gap, since sum_i a_i = 1; _REL_TOL * scale alone can exceed the whole
    allowance when W2^2 is far below the scale).
    """
    scale = sol.scale = _scale(x, y, sol.u, sol.v)
    sol.cost = float(np.dot(sol.flows, _pair_costs(x, y, sol.rows, sol.cols)))
    allowance = sol.allowance(_GAP_RTOL)
    tol = min(_REL_TOL * scale, 0.5 * allowance)
    row_min, rows, cols = _full_check(x, y, sol.u, sol.v, tol)
    sol.lower = float(a @ sol.u + b @ sol.v + a @ row_min) - 64 * _EPS * scale
    sol.min_rc = float(row_min.min())
    return sol.cost - sol.lower <= allowance, rows, cols


# --------------------------------------------------------------------------- solvers


def _solve_dense(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> _Solution:
    """Dense network simplex on all n m pairs."""
    n, m = len(x), len(y)
    rows, cols = np.divmod(np.arange(n * m), m)
    plan, log = _emd_dense(a, b, _pair_costs(x, y, rows, cols).reshape(n, m))
    r, c = np.nonzero(plan)
    u, v = _balanced(log["u"], log["v"])
    return _Solution(r, c, plan[r, c], u, v, n_levels=1, n_pairs=n * m)


def _knn_keys(x: np.ndarray, y: np.ndarray, tree_x: cKDTree, tree_y: cKDTree, k: int) -> np.ndarray:
    """Pair keys i * m + j of each point's k nearest neighbours in the other set (both ways)."""
    n, m = len(x), len(y)
    k = min(k, n, m)
    jx = tree_y.query(x, k)[1].reshape(n, k)
    iy = tree_x.query(y, k)[1].reshape(m, k)
    return np.concatenate(
        [np.repeat(np.arange(n), k) * m + jx.ravel(), iy.ravel() * m + np.repeat(np.arange(m), k)]
    )


def _self_neighbours(x: np.ndarray, tree: cKDTree) -> np.ndarray:
    """(n, k) indices of each point's _K_LOCAL nearest neighbours in its own set (itself first)."""
    k = min(_K_LOCAL, len(x))
    return tree.query(x, k)[1].reshape(len(x), k)


class _NotClosed(RuntimeError):
    """The certificate loop reached its round limit without a proof."""


def _sparse_rounds(
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    keys: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    near: tuple[np.ndarray, np.ndarray],
    n_levels: int,
    max_rounds: int,
    assign_first: bool = True,
) -> _Solution:
    """Sparse solves on the candidate pairs ``keys`` until the all-pairs certificate holds.

    Each round: the sparse network simplex on the candidate pairs, warm-started from (u, v), or
    from the optimal assignment of the candidate pairs where that pays (``_assignment_pays``;
    in the first round only if ``assign_first``: False when (u, v) are already optimal for a
    feasible plan of these candidates);
    the duals made exact on a spanning tree (_exact_potentials); local search: the pairs
    (i, j') with j' among the ``near[1]`` neighbours of a partner j of i (and the same from the
    x side, ``near[0]``) whose reduced cost r_ij = c_ij - u_i - v_j is below -tol are added and
    the problem re-solved. When the local search finds nothing: the all-pairs ``_certify``; if
    it fails, each row's most violated pair is added and the loop goes on. When every such
    pair is already a candidate, the network simplex cannot do better: the plan is accepted if
    its gap is within _GAP_RTOL_STUCK (``gap_rtol`` records it), else RuntimeError. The
    candidate set must contain a feasible plan. Raises _NotClosed after ``max_rounds`` rounds.
    """
    m = len(y)
    near_x, near_y = near
    k_loc = near_x.shape[1]
    keys = _sorted_unique(keys)
    costs = _pair_costs(x, y, *np.divmod(keys, m))
    n_added = n_added_full = 0
    solved_pairs = 0 if assign_first else keys.size  # pairs (u, v) are optimal for
    for n_rounds in range(1, max_rounds + 1):
        rows, cols = np.divmod(keys, m)
        if _assignment_pays(a, b, keys.size, solved_pairs):
            start = _assignment_start(rows, cols, costs, v)
            u = u if start is None else start
        fr, fc, fv, u, v = _emd_sparse(a, b, rows, cols, costs, u, v)
        solved_pairs = keys.size
        u, v, forest = _exact_potentials(x, y, (fr, fc), (keys, rows, cols, costs), u, v)
        sol = _Solution(fr, fc, fv, u, v, n_levels, n_rounds, keys.size, forest=forest)
        tol = _REL_TOL * _scale(x, y, u, v)
        cr = np.concatenate([np.repeat(fr, near_y.shape[1]), near_x.take(fr, axis=0).ravel()])
        cc = np.concatenate([near_y.take(fc, axis=0).ravel(), np.repeat(fc, k_loc)])
        bad = _pair_costs(x, y, cr, cc) - u[cr] - v[cc] < -tol
        keys, costs, n_new = _add_pairs(x, y, keys, costs, cr[bad] * m + cc[bad])
        if n_new == 0:
            proven, br, bc = _certify(x, y, a, b, sol)
            if not proven:
                keys, costs, n_new = _add_pairs(x, y, keys, costs, br * m + bc)
                n_added_full += n_new
                if n_new == 0:
                    if not sol.cost - sol.lower <= sol.allowance(_GAP_RTOL_STUCK):
                        raise RuntimeError(
                            "exact W2: optimality not proven and no violated pair left to add "
                            f"(gap {sol.cost - sol.lower:.3e}, min reduced cost {sol.min_rc:.3e})"
                        )
                    proven, sol.gap_rtol = True, _GAP_RTOL_STUCK
            if proven:
                sol.n_added, sol.n_added_full = n_added, n_added_full
                sol.n_pairs = keys.size
                return sol
        n_added += n_new
    raise _NotClosed(f"exact W2: certificate loop did not close in {max_rounds} rounds")


def _solve(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> _Solution:
    """Multiscale sparse network simplex whose result passes the all-pairs ``_certify``.

    1. Group both sets into cells of ~_GROUP points and solve the problem between the cells
       (mass-weighted centroids, cell masses) recursively; dense below _DENSE_MAX_PAIRS.
    2. Candidate pairs: every point pair between two cells that exchange mass in the coarse
       plan, each point's _K_NN nearest neighbours (both ways), and the north-west-corner arcs
       (a feasible plan, so the sparse problem is never infeasible).
    3. ``_sparse_rounds`` from the coarse duals: sparse solves, local search over the
       _K_LOCAL nearest neighbours of each partner, and the all-pairs certificate.
    """
    n, m = len(x), len(y)
    if n * m <= _DENSE_MAX_PAIRS:
        sol = _solve_dense(x, y, a, b)
        if not _certify(x, y, a, b, sol)[0]:
            raise RuntimeError(
                "exact W2: the dense solver's plan failed the optimality certificate "
                f"(gap {sol.cost - sol.lower:.3e}, min reduced cost {sol.min_rc:.3e})"
            )
        return sol
    lx, cx, ax = _coarsen(x, a, _GROUP)
    ly, cy, by = _coarsen(y, b, _GROUP)
    coarse = _solve(cx, cy, ax, by)
    ri, rj = _refine_arcs(lx, ly, len(cx), len(cy), coarse.rows, coarse.cols)
    nr, nc = _northwest_arcs(x, y, a, b)
    tree_x, tree_y = cKDTree(x), cKDTree(y)
    keys = np.concatenate([ri * m + rj, nr * m + nc, _knn_keys(x, y, tree_x, tree_y, _K_NN)])
    near = (_self_neighbours(x, tree_x), _self_neighbours(y, tree_y))
    return _sparse_rounds(
        x, y, a, b, keys, coarse.u[lx], coarse.v[ly], near, 1 + coarse.n_levels, _MAX_ROUNDS
    )


def _result(sol: _Solution, method: str, f: float, warm_fallback: bool = False) -> W2Result:
    """W2Result of a certified solution found in the frame of factor ``f`` (``_frame``)."""
    return W2Result(
        value=float(np.sqrt(max(sol.cost, 0.0))) / f,
        cost=float(sol.cost) / f**2,
        lower_bound=float(sol.lower) / f**2,
        gap=float(sol.cost - sol.lower) / f**2,
        min_reduced_cost=float(sol.min_rc) / f**2,
        n_rounds=sol.n_rounds,
        n_candidate_pairs=sol.n_pairs,
        n_added_pairs=sol.n_added,
        n_added_by_full_check=sol.n_added_full,
        n_levels=sol.n_levels,
        method=method,
        warm_fallback=warm_fallback,
        gap_rtol=sol.gap_rtol,
    )


def w2_certified(x: Any, y: Any) -> W2Result:
    """Exact W2(x, y) with uniform weights and squared Euclidean cost, proven optimal.

    Returns a W2Result: the value, its certified lower bound and the solver's diagnostics.
    Raises ValueError for bad input and RuntimeError if optimality cannot be proven.
    """
    xa, ya, f = _inputs(x, y)
    sol = _solve(xa, ya, _uniform(len(xa)), _uniform(len(ya)))
    return _result(sol, "dense" if sol.n_levels == 1 else "sparse", f)


def w2(x: Any, y: Any) -> float:
    """Exact W2(x, y) = sqrt(min_P sum_ij P_ij |x_i - y_j|^2), uniform weights 1/n and 1/m.

    Fast certified path (see the module docstring); equals ``w2_emd`` up to rounding. Should
    the certificate ever fail to close, it warns and returns the dense ``w2_emd`` instead
    (itself exact, or a RuntimeError).
    """
    try:
        return w2_certified(x, y).value
    except RuntimeError as err:
        warnings.warn(f"{err}; falling back to dense w2_emd", RuntimeWarning, stacklevel=2)
        return w2_emd(x, y)


def w2_emd(x: Any, y: Any) -> float:
    """Exact W2 by POT's dense network simplex (ot.emd2) on the full cost matrix ot.dist.

    numItermax grows with n m (and once more on failure); a result that is not optimal
    raises RuntimeError instead of being returned.
    """
    xa, ya, f = _inputs(x, y)
    a, b = _uniform(len(xa)), _uniform(len(ya))
    cost_matrix = ot.dist(xa, ya, metric="sqeuclidean")
    for limit in _iteration_limits(cost_matrix.size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cost, log = ot.emd2(a, b, cost_matrix, numItermax=limit, log=True)
        if log["result_code"] == 1:
            return float(np.sqrt(max(float(cost), 0.0))) / f
        if log["result_code"] != 3:
            break
    raise RuntimeError(
        f"w2_emd: network simplex did not reach optimality ({log['warning']}; "
        f"numItermax={limit}, {cost_matrix.shape[0]}x{cost_matrix.shape[1]} problem)"
    )


# --------------------------------------------------------------------------- sequences


def _many_inputs(ref: Any, samples: Any, order: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``ref`` (n, d), ``samples`` (K, m, d) and ``order`` (a permutation of range(K))."""
    xa = as_points(ref, "ref")
    ys = to_numpy(samples, "samples")
    if ys.ndim != 3:
        raise ValueError(f"samples: expected shape (K, m, d), got {ys.shape}")
    if ys.shape[0] == 0 or ys.shape[1] == 0:
        raise ValueError(f"samples: empty (shape {ys.shape})")
    if ys.shape[2] != xa.shape[1]:
        raise ValueError(
            f"samples: expected {xa.shape[1]} coordinates per point like ref, got {ys.shape[2]}"
        )
    finite = np.isfinite(ys).all(axis=(1, 2))
    if not finite.all():
        raise ValueError(
            f"samples: {int((~finite).sum())} model(s) contain NaN or infinite values, first "
            f"index {int(np.flatnonzero(~finite)[0])}"
        )
    k = ys.shape[0]
    if order is None:
        idx = np.arange(k)
    else:
        idx = to_numpy(order, "order")
        if idx.ndim != 1 or not np.array_equal(np.sort(idx), np.arange(k)):
            raise ValueError(f"order: expected a permutation of range({k}), got {idx!r}")
        idx = idx.astype(np.int64)
    return xa, ys, idx


def _solve_warm(
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    prev: _Solution,
    near_x: np.ndarray,
) -> _Solution:
    """Warm start from the previous problem's solution ``prev`` of the sequence.

    The sets x (the fixed reference) and the previous y have the same sizes and point j of y
    is the "same" sample as point j of the previous y, so the previous plan's support S (pairs
    (i, j)) is a feasible plan of this problem too. Candidates: S, and for each (i, j) in S the
    pairs (i, j') and (i', j) with j' among the _K_WARM nearest neighbours of j in y and i'
    among those of i in x (on the sampler's sequences: fewer solver rounds and arcs than adding
    the cross-set kNN pairs of the cold path), and the arcs of the forest on which the
    previous duals were exact. The sparse network simplex starts from the duals that make
    those arcs tight at this problem's costs (``_tree_potentials``): from them POT's warm start
    rebuilds the previous basis, whose flows, the previous plan, are feasible here, so it
    starts from a feasible basis instead of rebuilding one (5-8x fewer CPU-s for this first
    solve on the sampler's sequences, benchmarks/README.md). Then ``_sparse_rounds`` (local
    search and the all-pairs certificate), at most _WARM_MAX_ROUNDS rounds (raises _NotClosed
    after that). ``near_x``: (n, _K_LOCAL) neighbours of each x point in x (computed once per
    sequence).
    """
    m = len(y)
    tree_y = cKDTree(y)
    near = (near_x, _self_neighbours(y, tree_y))
    kw = min(_K_WARM, near_x.shape[1], near[1].shape[1])
    fr, fc = prev.rows, prev.cols
    parts = [
        fr * m + fc,
        np.repeat(fr, kw) * m + near[1][fc, :kw].ravel(),
        near_x[fr, :kw].ravel() * m + np.repeat(fc, kw),
    ]
    u, v = prev.u, prev.v
    if prev.forest is not None:
        parts.append(prev.forest[0] * m + prev.forest[1])
        u, v = _tree_potentials(x, y, prev.forest, u, v)
    # the previous duals are optimal for the previous plan, a feasible plan here: no
    # assignment start in the first round (assign_first False)
    keys = np.concatenate(parts)
    return _sparse_rounds(x, y, a, b, keys, u, v, near, 1, _WARM_MAX_ROUNDS, False)


def w2_many_certified(ref: Any, samples: Any, order: Any = None) -> list[W2Result]:
    """Exact W2(ref, samples[k]) for every k, each proven optimal like ``w2_certified``.

    For a sequence of similar problems: one fixed reference set ``ref`` (n, d) against K sample
    sets ``samples`` (K, m, d) whose point j is "the same" sample across k (common random
    numbers: same start x_T and same sampler noise for every model), consecutive sets being
    close. The problems are solved in ``order`` (a permutation of range(K); default the given
    order: pass the models seed-major, epoch-ascending, so that neighbours in the order are
    consecutive checkpoints of one seed). The first problem, and any whose warm start fails,
    is solved cold (``_solve``: dense for n m <= _DENSE_MAX_PAIRS, else multiscale). Problem
    k + 1 is warm-started from problem k (``_solve_warm``): the previous optimal plan's
    support (a feasible plan here: the marginals are the same) plus kNN pairs as candidates,
    the previous duals (u on ref, v on sample j) as the simplex's starting potentials. Every
    value passes the all-pairs certificate: a.u + b.v + sum_i a_i min_j r_ij <= W2^2 <=
    sum_ij P_ij c_ij with a relative gap below _GAP_RTOL. A warm start that does not close
    within _WARM_MAX_ROUNDS rounds falls back to the cold path (``warm_fallback`` True).

    Should the cold path itself fail to prove optimality (seen with 1% of the samples 1e5
    times farther out than the rest: POT's own potentials, offset by its artificial arcs' cost
    (n + m) max c_ij, then lose the low bits that the small reduced costs need, and its sparse
    optimum is off by more than the certificate allows), it warns and uses ``w2_emd`` exactly
    as ``w2`` does (method "emd", NaN bounds), and the next problem starts cold.

    Returns the W2Result of each model, in the input order (not the solving order). Raises
    ValueError for bad input and RuntimeError when even ``w2_emd`` does not converge.
    """
    xa, ys, idx = _many_inputs(ref, samples, order)
    n, m = len(xa), ys.shape[1]
    a, b = _uniform(n), _uniform(m)
    near_x = _self_neighbours(xa, cKDTree(xa))  # invariant to the per-problem frame
    results: list[W2Result | None] = [None] * len(ys)
    prev: _Solution | None = None
    f_prev = 1.0
    for k in idx:
        # a common translation leaves every c_ij, hence plan and duals, unchanged; a factor f
        # multiplies them by f^2
        x, y, f = _frame(xa, ys[k])
        fallback = False
        if prev is not None:
            prev.u, prev.v = prev.u * (f / f_prev) ** 2, prev.v * (f / f_prev) ** 2
            try:
                prev = _solve_warm(x, y, a, b, prev, near_x)
                results[k] = _result(prev, "warm", f)
                f_prev = f
                continue
            except RuntimeError:
                fallback = True
        try:
            prev = _solve(x, y, a, b)
        except RuntimeError as err:  # as in w2: the dense network simplex instead
            warnings.warn(
                f"samples[{k}]: {err}; falling back to dense w2_emd", RuntimeWarning, stacklevel=2
            )
            prev = None
            results[k] = _emd_result(w2_emd(x, y) / f, n * m, fallback)
            continue
        f_prev = f
        results[k] = _result(prev, "dense" if prev.n_levels == 1 else "sparse", f, fallback)
    return results


def _emd_result(value: float, n_pairs: int, warm_fallback: bool) -> W2Result:
    """W2Result of a ``w2_emd`` value (converged network simplex; no certificate: NaN bounds)."""
    nan = float("nan")
    return W2Result(
        value=value,
        cost=value**2,
        lower_bound=nan,
        gap=nan,
        min_reduced_cost=nan,
        n_rounds=0,
        n_candidate_pairs=n_pairs,
        n_added_pairs=0,
        n_added_by_full_check=0,
        n_levels=1,
        method="emd",
        warm_fallback=warm_fallback,
        gap_rtol=nan,
    )


def w2_many(ref: Any, samples: Any, order: Any = None) -> np.ndarray:
    """Exact W2(ref, samples[k]) for k = 0..K-1, as a (K,) array; see ``w2_many_certified``.

    Warm-starts each problem from the previous one in ``order`` (default: the given order,
    which should be seed-major, epoch-ascending). Every value is certified like ``w2``'s;
    equals [w2_emd(ref, q) for q in samples] up to rounding.
    """
    return np.array([r.value for r in w2_many_certified(ref, samples, order)])
