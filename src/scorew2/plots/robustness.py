"""Figure R (not in the paper): both sides of Theorem 3 against the size of the perturbation.

One column per perturbation family (``scorew2.perturb``), one row per (data set, regulariser,
T) of the robustness tables (``scorew2.robustness``). Log axis: the exact W2(q0, q0~) between
the models, the perturbation's own W2(p0, p0~), the triangle with the measured W2 of each
run, and Theorem 3's right-hand side with the estimated and the certified L_s. Size 0 (the
data against itself: two models of the same data) opens both columns.
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from scorew2.perturb import PERTURBATIONS
from scorew2.plots.common import BAND, Output, figure, legend_below
from scorew2.runs import DATASETS, ordered

__all__ = ["SERIES", "figR"]

#: Column of the robustness table -> its label in figure R, bottom to top of the plot.
SERIES = {
    "w2_q": "$W_2(q_0, \\tilde q_0)$, the models",
    "w2_p": "$W_2(p_0, \\tilde p_0)$, the data",
    "rhs_measured": "triangle with the measured $W_2(p_0, q_0)$, $W_2(\\tilde p_0, \\tilde q_0)$",
    "rhs": "Theorem 3's right-hand side, estimated $L_s$",
    "rhs_cert": "Theorem 3's right-hand side, certified $L_s$",
}


def _long(robust: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, series) with positive value; the size-0 rows in every family."""
    base = robust[robust["family"] == "none"]
    fams = ordered(robust.loc[robust["family"] != "none", "family"].unique(), PERTURBATIONS)
    parts = [robust[robust["family"] == f] for f in fams]
    parts += [base.assign(family=f) for f in fams]
    df = pd.concat(parts, ignore_index=True)
    long = df.melt(
        id_vars=["dataset", "regularizer", "T", "family", "delta", "seed"],
        value_vars=[c for c in SERIES if c in df],
    )
    long = long[long["value"] > 0]  # the log axis: W2(p0, p0) = 0 and uncertified NaN left out
    long["variable"] = long["variable"].map(SERIES)
    return long


def figR(robustness: pd.DataFrame, out: Output) -> None:
    """Figure R: both sides of Theorem 3 (and the measured triangle) against the size."""
    long = _long(robustness)
    fams = ordered(long["family"].unique(), PERTURBATIONS)
    groups = long[["dataset", "regularizer", "T"]].drop_duplicates()
    order = {d: i for i, d in enumerate(ordered(groups["dataset"].unique(), DATASETS))}
    groups = sorted(groups.itertuples(index=False), key=lambda g: (order[g.dataset], g.T))
    n_pairs = robustness.groupby(["dataset", "regularizer", "T", "family", "delta"]).size()
    with figure(3.6 * len(fams) + 0.6, 3.4 * len(groups) + 1.4, out) as fig:
        axes = fig.subplots(len(groups), len(fams), squeeze=False, sharey="row")
        for i, g in enumerate(groups):
            for j, fam in enumerate(fams):
                ax = axes[i, j]
                d = long[
                    (long["dataset"] == g.dataset)
                    & (long["regularizer"] == g.regularizer)
                    & (long["T"] == g.T)
                    & (long["family"] == fam)
                ]
                sns.lineplot(
                    d,
                    x="delta",
                    y="value",
                    hue="variable",
                    hue_order=[v for v in SERIES.values() if v in set(d["variable"])],
                    errorbar=BAND if n_pairs.max() > 1 else None,
                    marker="o",
                    ax=ax,
                )
                ax.set_yscale("log")
                ax.set_title(f"{g.dataset}, {g.regularizer}, T = {g.T}: {fam}", fontsize="medium")
                ax.set_xlabel("shift $\\delta$" if fam == "shift" else "moved fraction $\\epsilon$")
                ax.set_ylabel("$W_2$ or its bound (log)" if j == 0 else "")
        legend_below(fig, axes[-1, 0], ncols=2)
        fig.suptitle(
            "Figure R: Theorem 3, $W_2(q_0, \\tilde q_0) \\leq W_2(p_0, \\tilde p_0) + B + "
            "\\tilde B$, on perturbed data\nmean over "
            f"{int(n_pairs.max())} model pairs (seed $s$ against $s + 1$); band: min-max over "
            "the pairs",
            fontsize="medium",
        )
