"""Benchmark: certified fast exact W2 (w2_certified) against dense POT emd2 (w2_emd).

Both are timed in the same run on the same seeded inputs shaped like the pipeline's (data
against generated samples): four Gaussian clusters at (+-0.5, +-0.5), std 0.0125, against a
shuffled jittered copy with 2% uniform outliers; and two moons against a perturbed copy with
outliers. The machine is shared, so report medians of repeats and ratios, not absolute times.

    .venv/bin/python benchmarks/bench_w2.py [--sizes 2000 4000 8000] [--repeats 3] [--out f.csv]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable

import numpy as np

from scorew2.wasserstein import w2_certified, w2_emd


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--shapes", nargs="+", default=["clusters", "moons"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="optional CSV file for the table")
    args = parser.parse_args()

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
