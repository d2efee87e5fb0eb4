"""Figure C (not in the paper): the certified L_s(t) against the estimate, and the two bounds.

Final models only (what the certify rule covers). One column per (data set, T); top: L_s(t)
estimated (solid) and its certified upper bound (dashed) per regulariser; bottom: ln W2, the
bound with the estimated L_s and the bound with the certified L_s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from scorew2.plots.common import Output, band, figure, legend_below, palette, seed_note
from scorew2.runs import CHECKPOINT_KEYS, DATASETS, REGULARIZERS, ordered

__all__ = ["figC"]

_BOUNDS = {
    "w2": "exact $\\ln W_2(p_0, q_0)$",
    "log_bound": "ln bound, estimated $L_s$",
    "log_bound_cert": "ln bound, certified $L_s$",
}


def _columns(certified: pd.DataFrame) -> list[tuple[str, int]]:
    pairs = certified[["dataset", "T"]].drop_duplicates()
    order = {d: i for i, d in enumerate(ordered(pairs["dataset"].unique(), DATASETS))}
    return sorted(
        ((str(d), int(t)) for d, t in pairs.itertuples(index=False)),
        key=lambda p: (order[p[0]], p[1]),
    )


def figC(
    bounds: pd.DataFrame, lipschitz: pd.DataFrame, certified: pd.DataFrame, out: Output
) -> None:
    """Figure C: estimated and certified L_s(t) of the final models, and both bounds."""
    keys = [*CHECKPOINT_KEYS, "step"]
    ls = certified.merge(lipschitz[[*keys, "L_s"]], on=keys, validate="one_to_one")
    fin = bounds[bounds["certified"]].copy()
    fin["w2"] = np.log(fin["w2"])
    long = fin.melt(id_vars=["dataset", "T", "regularizer", "seed"], value_vars=list(_BOUNDS))
    long["variable"] = long["variable"].map(_BOUNDS)
    regs = ordered(ls["regularizer"].unique(), REGULARIZERS)
    colours = palette(regs)
    cols = _columns(certified)
    with figure(max(7.6, 3.2 * len(cols) + 1.0), 6.8, out) as fig:
        axes = fig.subplots(2, len(cols), squeeze=False)
        for j, (ds, T) in enumerate(cols):
            d = ls[(ls["dataset"] == ds) & (ls["T"] == T)]
            top = axes[0, j]
            for y, style in (("L_s", "-"), ("L_cert_upper", "--")):
                sns.lineplot(
                    d,
                    x="step",
                    y=y,
                    hue="regularizer",
                    hue_order=regs,
                    palette=colours,
                    errorbar=band(d),
                    ls=style,
                    ax=top,
                    legend=False,
                )
            top.set_yscale("symlog", linthresh=2.0)
            top.set_title(f"{ds}, T = {T}", fontsize="medium")
            top.set_xlabel("step $t$")
            top.set_ylabel("$L_s(t)$ (symlog)" if j == 0 else "")
            bot = axes[1, j]
            b = long[(long["dataset"] == ds) & (long["T"] == T)]
            sns.pointplot(
                b,
                x="regularizer",
                y="value",
                hue="variable",
                order=regs,
                hue_order=list(_BOUNDS.values()),
                errorbar=band(b),
                dodge=0.4,
                linestyles="none",
                palette=["C3", "C0", "k"],
                ax=bot,
            )
            bot.set_xlabel("")
            bot.set_ylabel("log value" if j == 0 else "")
        keys = [Line2D([], [], color=c, label=r) for r, c in colours.items()]
        keys += [
            Line2D([], [], color="0.3", ls="-", label="$L_s$ estimated (grid and sampler paths)"),
            Line2D([], [], color="0.3", ls="--", label="$L_s$ certified (upper bound)"),
        ]
        legend_below(fig, axes[1, 0], ncols=3, extra=keys)
        fig.suptitle(
            "Figure C: certified against estimated $L_s(t)$ of the final models (region: "
            f"$p_t$'s components $\\pm k\\sigma_t$ and the sampler's states)\n{seed_note(ls)}",
            fontsize="medium",
        )
