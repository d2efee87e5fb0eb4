"""Training curves: figure 1 (J_DSM and W2 over training) and appendix F (J_SM against J_DSM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from scorew2.plots.common import (
    Output,
    band,
    dots,
    figure,
    legend_below,
    palette,
    seed_note,
    shade_maximise,
)
from scorew2.runs import DATASETS, REGULARIZERS, ordered

__all__ = ["fig1", "figF"]


def fig1(
    bounds: pd.DataFrame,
    out: Output,
) -> None:
    """Figure 1: J_DSM (top row) and exact W2(p0, q0) (bottom row) against epoch, per data set."""
    df = bounds
    datasets = ordered(df["dataset"], DATASETS)
    regs = ordered(df["regularizer"], REGULARIZERS)
    pal = palette(regs)
    with figure(3.9 * len(datasets) + 0.4, 6.2, out) as fig:
        axes = fig.subplots(2, len(datasets), squeeze=False, sharex=True)
        for j, ds in enumerate(datasets):
            d = df[df["dataset"] == ds]
            for i, (col, floor, name) in enumerate(
                [
                    ("jdsm", "dsm_floor", r"$J_{\mathrm{DSM}}$"),
                    ("w2", "w2_floor", r"$W_2(p_0, q_0)$ (exact)"),
                ]
            ):
                ax = axes[i, j]
                shade_maximise(ax, out.maximize_epochs)
                sns.lineplot(
                    d,
                    x="epoch",
                    y=col,
                    hue="regularizer",
                    hue_order=regs,
                    palette=pal,
                    estimator="mean",
                    errorbar=band(d),
                    ax=ax,
                    lw=1.3,
                )
                ax.axhline(
                    d[floor].mean(),
                    color="0.3",
                    ls=":",
                    lw=1.2,
                    label="DSM floor $J_{\\mathrm{DSM}}-J_{\\mathrm{SM}}$"
                    if i == 0
                    else "W2 sampling-noise floor",
                )
                ax.set_yscale("log")
                ax.set_xscale("symlog", linthresh=10, linscale=0.6)
                ax.set_xlim(0, max(d["epoch"].max(), 1))
                ax.set_ylabel(f"{name} (log scale)")
                ax.set_xlabel("epoch (symlog: linear to 10, then log)" if i == 1 else "")
                if i == 0:
                    ax.set_title(ds)
        extra = [Line2D([], [], color="0.3", ls=":", label="W2 sampling-noise floor")]
        legend_below(fig, axes[0, 0], ncols=len(regs) + 3, extra=extra)
        fig.suptitle(
            "Figure 1: $J_{\\mathrm{DSM}}$ and exact $W_2(p_0, q_0)$ over training; "
            f"grey: epochs 1-{out.maximize_epochs} maximise the loss\n{seed_note(df)}"
        )


def figF(
    bounds: pd.DataFrame,
    out: Output,
) -> None:
    """Appendix F: J_SM against J_DSM over training (log-log), with J_SM = J_DSM - dsm_floor,
    the wall J_DSM = dsm_floor and the diagonal J_SM = J_DSM."""
    df = bounds
    datasets = ordered(df["dataset"], DATASETS)
    regs = ordered(df["regularizer"], REGULARIZERS)
    pal = palette(regs)
    with figure(4.2 * len(datasets) + 0.4, 4.6, out) as fig:
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, ds in zip(axes, datasets, strict=True):
            d = df[(df["dataset"] == ds) & (df["jdsm"] > 0) & (df["jsm"] > 0)]
            dots(ax, d, 12, 0.7, x="jdsm", y="jsm", hue="regularizer", hue_order=regs, palette=pal)
            floor = float(df.loc[df["dataset"] == ds, "dsm_floor"].mean())
            lo = min(d["jdsm"].min(), d["jsm"].min(), floor) / 1.5
            hi = max(d["jdsm"].max(), d["jsm"].max()) * 1.5
            xs = np.geomspace(max(lo, floor * (1 + 1e-4)), hi, 400)
            ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, label="$J_{SM} = J_{DSM}$")
            ax.plot(xs, xs - floor, "k--", lw=1.2, label="$J_{SM} = J_{DSM} - $ DSM floor")
            ax.axvline(floor, color="C3", ls=":", lw=1.4, label="wall $J_{DSM}$ = DSM floor")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(max(lo, d["jsm"].min() / 3), hi)
            ok = int((d["jsm"] <= d["jdsm"]).sum())
            ax.set_title(
                f"{ds}: DSM floor {floor:.3g}; $J_{{SM}} \\leq J_{{DSM}}$ at {ok}/{len(d)}",
                fontsize="small",
            )
            ax.set_xlabel("$J_{\\mathrm{DSM}}$ (log scale)")
            ax.set_ylabel("$J_{\\mathrm{SM}}$, exact score of the noised data (log scale)")
        legend_below(fig, axes[0], ncols=len(regs) + 3)
        fig.suptitle(
            "Appendix F: $J_{\\mathrm{SM}}$ against $J_{\\mathrm{DSM}}$ at every checkpoint "
            "and seed; $J_{\\mathrm{DSM}} - J_{\\mathrm{SM}}$ is the $\\theta$-free DSM floor"
        )
