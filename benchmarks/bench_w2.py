"""Benchmark: certified fast exact W2 (w2_certified) against dense POT emd2 (w2_emd).

Both are timed in the same run on the same seeded inputs shaped like the pipeline's (data
against generated samples): four Gaussian clusters at (+-0.5, +-0.5), std 0.0125, against a
shuffled jittered copy with 2% uniform outliers; and two moons against a perturbed copy with
outliers. The machine is shared, so report medians of repeats and ratios, not absolute times.

    .venv/bin/python benchmarks/bench_w2.py [--sizes 2000 4000 8000] [--repeats 3] [--out f.csv]

Shapes ``gaussian-d<d>`` (the dimension sweep): N(0, 0.1 I_d) against N(0, 0.35^2 I_d), e.g.
``--shapes gaussian-d2 gaussian-d8 gaussian-d32 --sizes 2000``.

Sequence mode (the pipeline's W2 step: one reference set against K models' samples):

    .venv/bin/python benchmarks/bench_w2.py --sequence [--sizes 1000 2000] [--models 30]
        [--real samples_{n}.npz] [--stride 3]

times [w2_emd(ref, q) for q in samples], [w2(ref, q) ...] and w2_many(ref, samples) on the same
inputs in the same run. Synthetic: q_k = base + s_k * noise + jitter_k, s_k geometric from 0.5 to
0.01 (models converging), 2% fixed uniform outliers, noise common to all k (common random
numbers). --real: an .npz with "samples" (M, n, d) in model order k * S + s (checkpoint k, seed
s, S seeds), "ref" and "seeds" (one sampler output of scorew2.evaluate.sample_group); seed 0's
checkpoints 0, stride, 2 stride, ... are used ({n} in the name is replaced by the size).

Scale mode (exact W2 at sizes no dense solver reaches):

    .venv/bin/python benchmarks/bench_w2.py --scale [--sizes 1000 2000 5000 10000 20000 50000]
        [--emd-max 20000] [--shapes clusters] [--plain]

solves each size --repeats times (default 3; the median time is printed, with that run's
memory) in fresh processes on one thread (OMP/OpenBLAS/MKL threads = 1), so that each solve's
peak memory is its own (ru_maxrss, imports included); the dense emd2 runs once, up to
--emd-max only (its n x n matrix is 8 n^2 bytes: 3.2 GB at n = 20,000). Prints time and peak
memory against n, the ratio to emd2 and the agreement of the costs, the relative gap proven
(``proven``: W2Result.gap_rtol, 1e-10, or 1e-9 where POT's simplex could not improve the plan
further), and the fitted exponent of the time (least squares on log t against log n over the
sizes from 2,000 up). --plain also solves each size with the assignment start switched off
(``wasserstein._ASSIGNMENT_MIN`` above n: POT's simplex from the previous round's duals in
every round) and prints its time and its ratio to the default path.

Rounds mode (where the time of one solve goes, finest level first):

    .venv/bin/python benchmarks/bench_w2.py --rounds [--sizes 20000] [--shapes clusters]
        [--pivots]

one solve per size and shape (this process, one thread: set OMP_NUM_THREADS=1), each call of
POT's sparse network simplex timed (``wasserstein._emd_sparse``, wrapped): its level (n),
candidate pairs, seconds and, at the finest level, how many points changed partner since the
previous round; then the simplex's share of the whole solve. --pivots adds
each finest-level call's pivot count, warm-started as the solver does and cold (no starting
duals), by bisection on numItermax to within 0.5% (about 20 re-solves a call: minutes at n =
20,000).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

# POT is imported through scorew2 only: scorew2/__init__.py switches POT's torch backend off
# first (imported before it, POT loads torch: +1-2 s and about 200 MB in every child)
from scorew2 import wasserstein
from scorew2.wasserstein import w2, w2_certified, w2_emd, w2_many_certified

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def clusters(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [-0.5, -0.5]])
    return centres[rng.integers(0, 4, n)] + 0.0125 * rng.standard_normal((n, 2))


def moons(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, np.pi, n)
    upper = (rng.random(n) < 0.5)[:, None]
    pts = np.where(upper, np.c_[np.cos(t), np.sin(t)], np.c_[1.0 - np.cos(t), 0.5 - np.sin(t)])
    return 0.5 * (pts + 0.1 * rng.standard_normal((n, 2)))


def with_outliers(
    y: np.ndarray, rng: np.random.Generator, frac: float, lo: float, hi: float
) -> np.ndarray:
    y = y.copy()
    k = int(frac * len(y))
    y[:k] = rng.uniform(lo, hi, (k, y.shape[1]))
    return y


def make_pair(shape: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if shape.startswith("gaussian-d"):  # the dimension sweep's law against a wider Gaussian
        d = int(shape.removeprefix("gaussian-d"))
        return np.sqrt(0.1) * rng.standard_normal((n, d)), 0.35 * rng.standard_normal((n, d))
    if shape == "clusters":
        x = clusters(n, rng)
        y = clusters(n, rng)[rng.permutation(n)] + 0.01 * rng.standard_normal((n, 2))
        return x, with_outliers(y, rng, 0.02, -1.0, 1.0)
    x = moons(n, rng)
    y = moons(n, rng) + 0.02 * rng.standard_normal((n, 2))
    return x, with_outliers(y, rng, 0.02, -1.0, 1.5)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def synthetic_sequence(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ref (n, 2) clusters and k sample sets (k, n, 2) converging to the clusters' shape."""
    rng = np.random.default_rng(seed)
    ref = clusters(n, rng)
    base = clusters(n, rng)
    noise = rng.standard_normal((n, 2))
    scales = np.geomspace(0.5, 0.01, k)
    samples = base + scales[:, None, None] * noise + 0.002 * rng.standard_normal((k, n, 2))
    n_out = int(0.02 * n)
    samples[:, :n_out] = rng.uniform(-1.0, 1.0, (n_out, 2)) + 0.01 * rng.standard_normal(
        (k, n_out, 2)
    )
    return ref, samples


def real_sequence(path: str, k: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """ref and k sample sets of seed 0: checkpoints 0, stride, 2 stride, ... (epoch order)."""
    data = np.load(path)
    n_seeds = len(np.unique(data["seeds"]))
    models = np.arange(0, len(data["samples"]), n_seeds * stride)[:k]
    return data["ref"], data["samples"][models]


def sequence(args: argparse.Namespace) -> None:
    """Time emd, w2 and w2_many on one sequence per size; print medians and ratios."""
    print(
        f"{'source':>10} {'n':>6} {'K':>4} {'emd_s':>8} {'w2_s':>8} {'many_s':>8} "
        f"{'emd/many':>9} {'w2/many':>8} {'max_rel':>8} {'warm':>5} {'fallbk':>6} {'rounds':>6}"
    )
    for n in args.sizes:
        if args.real:
            source = "real"
            ref, samples = real_sequence(args.real.replace("{n}", str(n)), args.models, args.stride)
        else:
            source = "synthetic"
            ref, samples = synthetic_sequence(n, args.models, args.seed + n)
        t_emd, ref_vals = timed(lambda r=ref, s=samples: [w2_emd(r, q) for q in s], args.repeats)
        t_w2, _ = timed(lambda r=ref, s=samples: [w2(r, q) for q in s], args.repeats)
        t_many, res = timed(lambda r=ref, s=samples: w2_many_certified(r, s), args.repeats)
        vals = np.array([r.value for r in res])
        rel = float(np.max(np.abs(vals - ref_vals) / np.maximum(ref_vals, 1e-300)))
        print(
            f"{source:>10} {n:>6d} {len(samples):>4d} {t_emd:>8.2f} {t_w2:>8.2f} {t_many:>8.2f} "
            f"{t_emd / t_many:>9.2f} {t_w2 / t_many:>8.2f} {rel:>8.1e} "
            f"{sum(r.method == 'warm' for r in res):>5d} {sum(r.warm_fallback for r in res):>6d} "
            f"{sum(r.n_rounds for r in res):>6d}",
            flush=True,
        )


def solve_once(solver: str, shape: str, n: int, seed: int) -> dict:
    """One solve in this process: seconds, peak resident memory (MB), W2^2 and relative gap."""
    x, y = make_pair(shape, n, seed)
    if solver == "plain":  # the certified path without the assignment start
        wasserstein._ASSIGNMENT_MIN = sys.maxsize
    t0 = time.perf_counter()
    if solver in ("fast", "plain"):
        res = w2_certified(x, y)
        cost, gap, rtol = res.cost, res.gap / res.cost, res.gap_rtol
    else:
        cost, gap, rtol = w2_emd(x, y) ** 2, float("nan"), float("nan")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "cost": cost, "gap": gap, "gap_rtol": rtol}


def in_child(solver: str, shape: str, n: int, seed: int) -> dict | None:
    """``solve_once`` in a fresh one-thread process (its own peak memory); None, with the
    child's error printed, when the solve fails."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", solver, shape, str(n), str(seed)],
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        print(f"{shape:>9} {n:>6d} {solver} failed: {lines[-1]}", flush=True)
        return None
    return json.loads(out.stdout.splitlines()[-1])


def median_child(solver: str, shape: str, n: int, seed: int, repeats: int) -> dict | None:
    """``in_child`` ``repeats`` times (fresh processes, the same input): the run of median
    time, or None if any failed."""
    runs = [in_child(solver, shape, n, seed) for _ in range(repeats)]
    if any(r is None for r in runs):
        return None
    return sorted(runs, key=lambda r: r["seconds"])[(repeats - 1) // 2]


def scale(args: argparse.Namespace) -> None:
    """Time and peak memory of w2_certified (and emd2 up to --emd-max) against n."""
    print(
        f"{'shape':>9} {'n':>6} {'fast_s':>8} {'fast_MB':>8} {'emd_s':>8} {'emd_MB':>8} "
        f"{'emd/fast':>8} {'cost_rel':>8} {'gap_rel':>8} {'proven':>8}"
        + (f" {'plain_s':>8} {'pl/fast':>8}" if args.plain else "")
    )
    for shape in args.shapes:
        sizes, times = [], []
        for n in args.sizes:
            fast = median_child("fast", shape, n, args.seed + n, args.repeats)
            if fast is None:  # printed; no dense solve to compare with
                continue
            emd = in_child("emd", shape, n, args.seed + n) if n <= args.emd_max else None
            sizes.append(n)
            times.append(fast["seconds"])
            cols = ("-", "-", "-", "-")
            if emd:
                rel = abs(fast["cost"] - emd["cost"]) / emd["cost"]
                ratio = emd["seconds"] / fast["seconds"]
                cols = (
                    f"{emd['seconds']:.2f}", f"{emd['peak_mb']:.0f}", f"{ratio:.1f}", f"{rel:.1e}"
                )  # fmt: skip
            plain = (
                median_child("plain", shape, n, args.seed + n, args.repeats) if args.plain else None
            )
            extra = (
                f" {plain['seconds']:>8.2f} {plain['seconds'] / fast['seconds']:>8.2f}"
                if plain
                else ""
            )
            print(
                f"{shape:>9} {n:>6d} {fast['seconds']:>8.2f} {fast['peak_mb']:>8.0f} "
                f"{cols[0]:>8} {cols[1]:>8} {cols[2]:>8} {cols[3]:>8} {fast['gap']:>8.1e} "
                f"{fast['gap_rtol']:>8.0e}{extra}",
                flush=True,
            )
        big = np.array(sizes) >= 2000
        if big.sum() >= 2:
            slope = np.polyfit(np.log(np.array(sizes)[big]), np.log(np.array(times)[big]), 1)[0]
            print(f"{shape}: w2_certified time ~ n^{slope:.2f} (fitted over n >= 2000)")


def pivot_count(call: tuple, warm: bool) -> int:
    """Fewest pivots (within 0.5%, at least 100) with which the sparse simplex of ``call``
    (the arguments of ``wasserstein._emd_sparse``) reaches optimality: bisection on numItermax,
    from the call's starting duals or (``warm`` False) from none."""
    a, b, rows, cols, cost, u0, v0 = call
    r64, c64 = rows.astype(np.uint64), cols.astype(np.uint64)
    duals = (u0, v0) if warm else (None, None)

    def closes(limit: int) -> bool:
        return wasserstein.emd_c_sparse(a, b, r64, c64, cost, limit, *duals)[-1] == 1

    lo, hi = 0, 1000
    while not closes(hi):
        lo, hi = hi, 4 * hi
    while hi - lo > max(100, hi // 200):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if closes(mid) else (mid, hi)
    return hi


def rounds(args: argparse.Namespace) -> None:
    """Per-call time of POT's sparse simplex inside one w2_certified solve (see the doc)."""
    calls: list[tuple[tuple, float, np.ndarray]] = []
    plain = wasserstein._emd_sparse

    def recorded(*call: np.ndarray) -> tuple:
        t0 = time.perf_counter()
        out = plain(*call)
        partner = np.full(len(call[0]), -1)
        partner[out[0]] = out[1]  # a permutation when n = m (uniform weights)
        calls.append((call, time.perf_counter() - t0, partner))
        return out

    wasserstein._emd_sparse = recorded
    try:
        for shape in args.shapes:
            for n in args.sizes:
                calls.clear()
                x, y = make_pair(shape, n, args.seed + n)
                t0 = time.perf_counter()
                res = w2_certified(x, y)
                total = time.perf_counter() - t0
                print(
                    f"{shape} n = {n}: {total:.2f} s, W2^2 = {res.cost!r}, {res.n_rounds} rounds",
                    flush=True,
                )
                print(f"{'level n':>8} {'pairs':>9} {'solve_s':>8} {'changed':>8} "
                      f"{'pivots':>8} {'cold':>8}")  # fmt: skip
                previous = None
                for call, seconds, partner in calls:
                    fine = len(call[0]) == n
                    changed = (
                        "-" if not fine or previous is None else int((partner != previous).sum())
                    )
                    previous = partner if fine else previous
                    piv = (
                        (pivot_count(call, True), pivot_count(call, False))
                        if fine and args.pivots
                        else ("-", "-")
                    )
                    print(f"{len(call[0]):>8d} {len(call[2]):>9d} {seconds:>8.3f} {changed!s:>8} "
                          f"{piv[0]!s:>8} {piv[1]!s:>8}", flush=True)  # fmt: skip
                simplex = sum(c[1] for c in calls)
                print(
                    f"POT's sparse simplex: {simplex:.2f} of {total:.2f} s ({simplex / total:.0%})"
                )
    finally:
        wasserstein._emd_sparse = plain


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # one solve for scale(): solver shape n seed
        solver, shape, n, seed = sys.argv[2:6]
        print(json.dumps(solve_once(solver, shape, int(n), int(seed))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--shapes", nargs="+", default=["clusters", "moons"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="optional CSV file for the table")
    parser.add_argument("--sequence", action="store_true", help="time w2_many on a sequence")
    parser.add_argument("--models", type=int, default=30, help="sequence length K")
    parser.add_argument("--real", help="sampler output .npz ({n}: the size) instead of synthetic")
    parser.add_argument("--stride", type=int, default=3, help="checkpoint stride for --real")
    parser.add_argument("--scale", action="store_true", help="time and memory against n")
    parser.add_argument("--emd-max", type=int, default=20000, help="largest n for emd2 (--scale)")
    parser.add_argument("--rounds", action="store_true", help="per-call simplex time of a solve")
    parser.add_argument("--pivots", action="store_true", help="with --rounds: pivot counts")
    parser.add_argument("--plain", action="store_true", help="with --scale: no assignment start")
    args = parser.parse_args()
    if (args.rounds or args.scale) and args.shapes == ["clusters", "moons"]:
        args.shapes = ["clusters"]  # the default of these modes: one shape
    if args.rounds:
        args.sizes = args.sizes or [20000]
        rounds(args)
        return
    if args.scale:
        args.sizes = args.sizes or [1000, 2000, 5000, 10000, 20000, 50000]
        scale(args)
        return
    if args.sequence:
        args.sizes = args.sizes or [1000, 2000]
        sequence(args)
        return
    args.sizes = args.sizes or [2000, 4000, 8000]

    header = (
        "shape",
        "n",
        "emd_s",
        "fast_s",
        "ratio",
        "rel_diff",
        "w2",
        "gap_rel",
        "rounds",
        "pairs",
        "added",
        "added_full",
        "levels",
    )
    print(" ".join(f"{h:>10}" for h in header))
    rows = []
    for shape in args.shapes:
        for n in args.sizes:
            x, y = make_pair(shape, n, args.seed + n)
            t_fast, res = timed(lambda x=x, y=y: w2_certified(x, y), args.repeats)
            t_emd, ref = timed(lambda x=x, y=y: w2_emd(x, y), args.repeats)
            row = (
                shape,
                n,
                t_emd,
                t_fast,
                t_emd / t_fast,
                abs(res.value - ref) / ref,
                res.value,
                res.gap / res.cost,
                res.n_rounds,
                res.n_candidate_pairs,
                res.n_added_pairs,
                res.n_added_by_full_check,
                res.n_levels,
            )
            rows.append(row)
            print(
                f"{shape:>10} {n:>10d} {t_emd:>10.3f} {t_fast:>10.3f} {t_emd / t_fast:>10.2f} "
                f"{row[5]:>10.1e} {res.value:>10.6f} {row[7]:>10.1e} {res.n_rounds:>10d} "
                f"{res.n_candidate_pairs:>10d} {res.n_added_pairs:>10d} "
                f"{res.n_added_by_full_check:>10d} {res.n_levels:>10d}",
                flush=True,
            )
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)


if __name__ == "__main__":
    main()
