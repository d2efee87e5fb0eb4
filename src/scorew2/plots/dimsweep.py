"""Figure D (not in the paper): the bound of Corollary 1 against the dimension d.

One line per data set of the dimension sweep (``scorew2.highdim``), the median over seeds of
the final models with a min-max band, against d on a log2 axis (``scorew2.dimsweep``):
(a) the intercept 1/2 log(2 sum b_i I_i^2), (b) the bound beside the triangle bound it must
beat and W2, (c) the tightness log bound - log W2, (d) W2 and its two-sample floor with
Gelbrich's moment proxy and its floor, (e) J_DSM and the DSM floor, (f) max_t L_s(t) of the
model beside the exact score's and (Gaussian) the law's (symlog axis: the exact score's is
orders of magnitude larger).
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from scorew2.dimsweep import dimsweep_runs
from scorew2.highdim import DIM_SETS
from scorew2.plots.common import BAND, BAND_NOTE, Output, figure
from scorew2.runs import ordered

__all__ = ["PANELS", "figD"]

#: Panel -> (title, {column: line style label}, y scale).
PANELS: dict[str, tuple[str, dict[str, str], str]] = {
    "a": ("(a) intercept $\\frac{1}{2}\\ln(2\\sum_i b_i I_i^2)$", {"log_intercept": ""}, "linear"),
    "b": (
        "(b) the bound against $W_2$",
        {"bound": "bound", "w2_trivial": "triangle bound", "w2": "$W_2(p_0, q_0)$"},
        "log",
    ),
    "c": ("(c) tightness $\\ln$ bound $- \\ln W_2$", {"tightness": ""}, "linear"),
    "d": (
        "(d) $W_2$, its floor, and by moments",
        {
            "w2": "$W_2$ exact",
            "w2_floor": "$W_2$ two-sample floor",
            "w2_gelbrich": "Gelbrich (moments)",
            "w2_gelbrich_floor": "Gelbrich floor",
        },
        "log",
    ),
    "e": (
        "(e) $J_{\\mathrm{DSM}}$ and its floor",
        {"jdsm": "$J_{DSM}$", "dsm_floor": "floor"},
        "log",
    ),
    "f": (
        "(f) $\\max_t L_s(t)$",
        {"L_s_max": "model", "L_exact_max": "exact score", "L_law_max": "the law (Gaussian)"},
        "symlog",
    ),
}


def _panel(ax: Axes, runs: pd.DataFrame, key: str, bases: list[str]) -> None:
    title, series, scale = PANELS[key]
    long = runs.melt(id_vars=["base", "d", "seed"], value_vars=list(series)).dropna()
    long["series"] = long["variable"].map(series)
    styles = [v for v in series.values() if v]
    sns.lineplot(
        long,
        x="d",
        y="value",
        hue="base",
        hue_order=bases,
        style="series" if styles else None,
        style_order=styles or None,
        errorbar=BAND,
        estimator="median",
        marker="o",
        ax=ax,
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(runs["d"].unique()), [str(d) for d in sorted(runs["d"].unique())])
    ax.set_yscale(scale)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("dimension $d$")
    ax.set_ylabel("")
    if styles or key == "a":  # the series of each panel (and once, the data sets)
        ax.legend(fontsize="x-small", title_fontsize="x-small")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()


def figD(bounds: pd.DataFrame, lipschitz: pd.DataFrame, moments: pd.DataFrame, out: Output) -> None:
    """Figure D: the dimension sweep's final models against d (see the module docstring)."""
    runs = dimsweep_runs(bounds, lipschitz, moments)
    bases = ordered(runs["base"].unique(), DIM_SETS)
    n_seeds = int(runs.groupby(["base", "d"]).size().max())
    with figure(14.0, 9.0, out) as fig:
        axes = fig.subplots(2, 3).ravel()
        for ax, key in zip(axes, PANELS, strict=True):
            _panel(ax, runs, key, bases)
        fig.suptitle(
            "Figure D: the bound of Corollary 1 against the dimension (final models, median of "
            f"{n_seeds} seeds; band: {BAND_NOTE})",
            fontsize="medium",
        )
