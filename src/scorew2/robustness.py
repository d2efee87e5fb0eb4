"""Theorem 3 (robustness) from the runs of a data set and of its perturbed sets (no torch).

For data p0 with model q0 and perturbed data p0~ (``scorew2.perturb``) with model q0~,
Theorem 3 of the paper reads

    W2(q0, q0~) <= W2(p0, p0~) + B + B~,
    B = sqrt(2 sum_i b_i I_i^2) sqrt(J_DSM) + I_T W2(p_T, q_T)   (Corollary 1, each run's own),

the triangle inequality W2(q0, q0~) <= W2(q0, p0) + W2(p0, p0~) + W2(p0~, q0~) with each
run's W2 replaced by its bound (bound.csv's log_bound; log_bound_cert with the certified L_s).
Every W2 here is exact, between the runs' evaluation sets: q0 and q0~ are the final models'
samples, p0 and p0~ their reference subsets (``scorew2.evaluate.samples``). Those are the same
rows of the two training sets and the samplers share their noise, so W2(p0, p0~) is the
perturbation's own cost and W2(q0, q0~) is not inflated by evaluation noise. With the
measured W2(q0, p0) and W2(p0~, q0~) in place of B and B~ (``rhs_measured``) the inequality is
the triangle inequality between four uniform empirical laws of equal size: it must hold.

Model pairs: seed s_k of the base against seed s_{k+1 mod S} of the perturbed set, so the
size-0 rows (the base against itself, ``family`` "none") compare two models of the same data
(their seed-to-seed distance) and every size has S pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scorew2.perturb import PERTURBATIONS
from scorew2.runs import GroupId, frame
from scorew2.wasserstein import w2

__all__ = ["BOUND_COLUMNS", "Run", "seed_pairs", "theorem3_table"]

#: Suffix of each right-hand side -> the bound.csv column of log B it uses.
BOUND_COLUMNS = {"": "log_bound", "_cert": "log_bound_cert"}


@dataclass(frozen=True)
class Run:
    """The final model of each seed of one run group.

    Attributes
    ----------
    ref : np.ndarray of shape (n, d)
        The reference subset of the training set (W2's p0).
    samples : dict
        seed -> that seed's final samples q0, (n, d).
    bound : dict
        seed -> its final row of bound.csv (``epoch``, ``w2`` and ``BOUND_COLUMNS``).
    """

    ref: np.ndarray
    samples: dict[int, np.ndarray]
    bound: dict[int, pd.Series]

    @classmethod
    def final(cls, samples: Mapping[str, np.ndarray], bound: pd.DataFrame) -> Run:
        """From a samples.npz's arrays (``samples``, ``seeds``, ``epochs``, ``ref``) and the
        bound.csv of the same run group: each seed's last epoch."""
        seeds, epochs = np.asarray(samples["seeds"]), np.asarray(samples["epochs"])
        rows = bound.set_index(["seed", "epoch"], drop=False)
        out_q, out_b = {}, {}
        for s in np.unique(seeds):
            m = np.flatnonzero(seeds == s)
            m = m[np.argmax(epochs[m])]
            out_q[int(s)] = np.asarray(samples["samples"][m])
            out_b[int(s)] = rows.loc[(s, epochs[m])]
        return cls(np.asarray(samples["ref"]), out_q, out_b)


def seed_pairs(seeds: Sequence[int]) -> list[tuple[int, int]]:
    """(s_k, s_{k+1 mod S}) for the sorted seeds: S pairs, two different seeds when S > 1."""
    s = sorted(int(x) for x in seeds)
    return [(s[k], s[(k + 1) % len(s)]) for k in range(len(s))]


def _pair_columns(base: Run, other: Run, w2_p: float) -> dict[str, np.ndarray]:
    """Both sides of Theorem 3 for each seed pair of ``base`` against ``other``."""
    pairs = seed_pairs(sorted(set(base.samples) & set(other.samples)))
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    cols: dict[str, np.ndarray] = {
        "seed": np.array(a, dtype=int),
        "epoch": np.array([base.bound[s]["epoch"] for s in a], dtype=int),
        "seed_b": np.array(b, dtype=int),
        "w2_q": np.array([w2(base.samples[i], other.samples[j]) for i, j in pairs]),
        "w2_p": np.full(len(pairs), w2_p),
        "w2_a": np.array([base.bound[s]["w2"] for s in a], dtype=float),
        "w2_b": np.array([other.bound[s]["w2"] for s in b], dtype=float),
    }
    for sfx, col in BOUND_COLUMNS.items():
        ba = np.exp(np.array([base.bound[s][col] for s in a], dtype=float))
        bb = np.exp(np.array([other.bound[s][col] for s in b], dtype=float))
        rhs = w2_p + ba + bb
        # an uncertified bound (NaN) is not a violation; its rhs stays NaN
        cols |= {f"bound{sfx}": ba, f"bound{sfx}_b": bb, f"rhs{sfx}": rhs}
        cols[f"holds{sfx}"] = ~(cols["w2_q"] > rhs)
    cols["rhs_measured"] = cols["w2_a"] + w2_p + cols["w2_b"]
    return cols


def theorem3_table(
    group: GroupId, base: Run, perturbed: Sequence[tuple[str, float, Run]]
) -> pd.DataFrame:
    """Both sides of Theorem 3 for every seed pair (``seed_pairs``) of the base run group
    ``group`` against itself (family "none", delta 0) and against each perturbed run group
    (family, delta, run), families in ``scorew2.perturb.PERTURBATIONS`` order, sizes rising.

    Columns after the identity columns, seed (the base model's) and epoch: family, delta,
    seed_b (the perturbed model's), w2_q = W2(q0, q0~), w2_p = W2(p0, p0~), w2_a = W2(p0, q0)
    and w2_b = W2(p0~, q0~) (measured), bound and bound_b (B and B~), rhs = w2_p + B + B~,
    holds = not (w2_q > rhs); the same with the certified L_s (bound_cert, bound_cert_b,
    rhs_cert, holds_cert; NaN rhs where a run is not certified); rhs_measured = w2_a + w2_p +
    w2_b.
    """
    runs = [("none", 0.0, base)]
    runs += sorted(perturbed, key=lambda r: (PERTURBATIONS.index(r[0]), r[1]))
    parts = []
    for family, delta, run in runs:
        cols = _pair_columns(base, run, w2(base.ref, run.ref))
        seeds, epochs = cols.pop("seed"), cols.pop("epoch")
        n = len(seeds)
        head = {"family": np.full(n, family), "delta": np.full(n, float(delta))}
        parts.append(frame(group, seeds, epochs, **head, **cols))
    return pd.concat(parts, ignore_index=True)
