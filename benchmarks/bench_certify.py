"""Benchmark: the certified L_s with the affine enclosure (the pipeline's) against intervals.

Both certify the same final models of one trained run group at every step, in the same run,
over the pipeline's regions (``scorew2.evaluate.certify.certify_regions``), to the same
tolerance; the script prints per enclosure the CPU seconds, the boxes, their ratio, and the
largest difference of the upper bounds relative to max(1, |upper|) (both certificates hold, so
it is at most the tolerance). It also times the affine enclosure with 4096 boxes per model per
evaluation (the earlier default chunk) against the default, and checks that the bounds are
bit-identical. Needs the run's checkpoints: by default those of the tsweep
experiment at T = 50 (``.venv/bin/snakemake --cores 2
results/runs/tsweep/four_clusters/train_T50/checkpoints.pt`` makes them).

    .venv/bin/python benchmarks/bench_certify.py [--experiment tsweep] [--T 50] [--steps 10]
        [--regularizer none]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from scorew2.config import read_config
from scorew2.evaluate import load_group
from scorew2.evaluate.certify import certify_regions
from scorew2.lipschitz import certified_lipschitz
from scorew2.runs import GroupId


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="tsweep")
    ap.add_argument("--dataset", default="four_clusters")
    ap.add_argument("--regularizer", default="none", help="spectral_norm: the ReLU models")
    ap.add_argument("--T", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10, help="every (T / steps)-th step")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = read_config("config.yaml")
    ex = cfg["experiments"][args.experiment]
    run = {
        "schedule": {**ex["schedule"], "T": args.T},
        "prior": ex["prior"],
        "checkpoints": "final",
    }
    ev = cfg["evaluation"]
    base = Path(cfg["results_dir"])
    ckpt = base / "runs" / args.experiment / args.dataset / f"train_T{args.T}" / "checkpoints.pt"
    gid = GroupId(args.experiment, args.dataset, args.regularizer, args.T)
    group = load_group(gid, ckpt, base / "data" / f"{args.dataset}.npz", run, ev["seed"])
    lo, hi = certify_regions(group, ev["lipschitz_paths"], ev["certify_k_sigma"])
    steps = np.unique(np.linspace(0, args.T - 1, min(args.steps, args.T)).astype(int))
    variants = {  # name: (enclosure, chunk); None: certified_lipschitz's default chunk
        "interval": ("interval", None),
        "auto, chunk 4096": ("auto", 4096),
        "auto": ("auto", None),
    }
    result = {}
    for name, (enclosure, chunk) in variants.items():
        extra = {} if chunk is None else {"chunk": chunk}
        start, boxes, uppers = time.process_time(), 0, []
        for i in steps:
            c = certified_lipschitz(
                group.model, int(i), group.schedule.alpha_bars, lo[i], hi[i],
                ev["certify_tol"], enclosure=enclosure, **extra,
            )  # fmt: skip
            boxes += int(c.n_boxes.sum())
            uppers.append(c.upper)
        result[name] = (time.process_time() - start, boxes, np.array(uppers))
        print(f"{name:>16}: {result[name][0]:7.2f} CPU-s, {boxes:,} boxes")
    (t_i, b_i, u_i), (t_c, _, u_c), (t_a, b_a, u_a) = result.values()
    rel = np.abs(u_a - u_i) / np.maximum(1.0, np.abs(u_i))
    print(
        f"{args.experiment} {args.regularizer} T = {args.T}, "
        f"{len(steps)} steps x {group.model.n_models} models: "
        f"affine {t_i / t_a:.2f}x faster than intervals, {b_i / b_a:.2f}x fewer boxes; "
        f"upper bounds differ by at most {rel.max():.1e} of max(1, |upper|); "
        f"the default chunk {t_c / t_a:.2f}x faster than 4096 boxes per model "
        f"(upper bounds {'identical' if np.array_equal(u_a, u_c) else 'DIFFERENT'})"
    )


if __name__ == "__main__":
    main()
