"""The log-log view: figure 2 (ln W2 against ln J_DSM, no regulariser, with samples), the
same on the authors' axes (``fig2_authors``) and figure 3 (the same per regulariser, with the
final models' intercepts, losses and W2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import SymLogNorm
from matplotlib.figure import Figure

from scorew2.plots.common import (
    LN_JDSM,
    LN_W2,
    Output,
    band,
    dots,
    figure,
    legend_below,
    ln,
    palette,
    seed_note,
    seeded_jitter,
)
from scorew2.runs import DATASETS, REGULARIZERS, final_rows, ordered

__all__ = ["AUTHORS_WINDOW", "fig2", "fig2_authors", "fig3"]

_PAPER_LINE = "paper's line (authors' $L_s$ estimator, final model)"
_GRID_LINE = "same, our $L_s$ estimator (final model)"


def _loglog_panel(
    ax: Axes, d: pd.DataFrame, norm: SymLogNorm, *, bound_markers: bool
) -> tuple[float, float]:
    """ln W2 against ln J_DSM (points coloured by epoch), the paper's line, ours, noise floor.

    Returns the two intercepts (authors' estimator, our grid estimator) of the final model.
    """
    x, y = ln(d["jdsm"]), ln(d["w2"])
    pts = pd.DataFrame({"x": x, "y": y, "epoch": d["epoch"].to_numpy()})
    dots(
        ax, pts, 14, 0.85, x="x", y="y", hue="epoch", hue_norm=norm, palette="viridis", legend=False
    )
    fin = final_rows(d)
    c_paper = float(fin["log_intercept_paper"].mean())
    c_grid = float(fin["log_intercept"].mean())
    xs = np.array([np.nanmin(x), np.nanmax(x)])
    ax.plot(xs, 0.5 * xs + c_paper, "k--", lw=1.2, label=_PAPER_LINE, zorder=4)
    ax.plot(xs, 0.5 * xs + c_grid, color="C3", ls="-.", lw=1.2, label=_GRID_LINE, zorder=4)
    if bound_markers:
        sns.scatterplot(
            x=x,
            y=d["log_bound"].to_numpy(),
            marker="x",
            color="0.45",
            s=12,
            linewidth=0.8,
            ax=ax,
            label="each checkpoint's bound (its own $L_s$; above the frame when vacuous)",
            zorder=2,
        )
    ax.axhline(
        float(np.log(d["w2_floor"].mean())),
        color="0.3",
        ls=":",
        lw=1.2,
        label="$\\ln$ W2 sampling-noise floor",
    )
    # frame the measured W2 (and the floor): maximise-phase bounds reach ln W2 ~ 1e3, which
    # would squash every measurement into one line
    lo = min(float(np.nanmin(y)), float(np.log(d["w2_floor"].min())))
    hi = float(np.nanmax(y))
    pad = 0.08 * (hi - lo) + 0.5
    ax.set_ylim(lo - pad, hi + 3 * pad)
    ax.set_xlabel(f"{LN_JDSM} (natural log)")
    ax.set_ylabel(f"{LN_W2} (natural log)")
    return c_paper, c_grid


def _epoch_norm(df: pd.DataFrame) -> SymLogNorm:
    return SymLogNorm(linthresh=1.0, vmin=0.0, vmax=max(float(df["epoch"].max()), 1.0))


def _epoch_colorbar(fig: Figure, norm: SymLogNorm, axes: Any) -> None:
    sm = ScalarMappable(norm=norm, cmap="viridis")
    fig.colorbar(
        sm,
        ax=axes,
        location="bottom",
        label="epoch of the checkpoint (symlog colour scale)",
        shrink=0.7,
        aspect=40,
        pad=0.01,
    )


def _scatter_cloud(
    ax: Axes, pts: np.ndarray, title: str, color: str = "C0", frame: np.ndarray | None = None
) -> None:
    """Scatter a 2-D point cloud in a square window that holds ``frame`` (default: the points)."""
    sns.scatterplot(
        x=pts[:, 0], y=pts[:, 1], s=2, color=color, edgecolor="none", ax=ax, rasterized=True
    )
    f = pts if frame is None else frame
    lo, hi = f.min(axis=0), f.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.08, 1e-6)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, fontsize="small")
    ax.tick_params(labelsize="x-small")


def _pick_model(
    arr: dict[str, np.ndarray], epoch_at_least: int | None
) -> tuple[np.ndarray, int, int]:
    """Samples of the lowest seed at the first epoch >= ``epoch_at_least`` (None: the last)."""
    seed = int(np.min(arr["seeds"]))
    rows = np.flatnonzero(arr["seeds"] == seed)
    epochs = arr["epochs"][rows]
    if epoch_at_least is None:
        k = rows[np.argmax(epochs)]
    else:
        ok = epochs >= epoch_at_least
        k = (
            rows[np.argmin(np.where(ok, epochs, np.iinfo(np.int64).max))]
            if ok.any()
            else rows[np.argmax(epochs)]
        )
    return np.asarray(arr["samples"][k], dtype=np.float64), seed, int(arr["epochs"][k])


def _fig2_row(
    fig: Figure,
    gs: Any,
    r: int,
    d: pd.DataFrame,
    arr: Mapping[str, np.ndarray],
    norm: SymLogNorm,
    maximize_epochs: int,
) -> Axes:
    """Row r of figure 2 for one data set: the log-log panel, q0 after the maximise phase, q0
    at convergence and p0. Returns the log-log axes."""
    ds = d["dataset"].iloc[0]
    ax = fig.add_subplot(gs[r, 0])
    c_paper, c_grid = _loglog_panel(ax, d, norm, bound_markers=True)
    nv, n = int(d["violation"].sum()), len(d)
    ax.set_title(
        f"{ds}: intercept {c_paper:.2f} (authors' $L_s$), {c_grid:.2f} (our $L_s$); "
        f"bound violated at {nv}/{n} checkpoints",
        fontsize="small",
    )
    ref = np.asarray(arr["ref"], dtype=np.float64)
    q_max, s1, e1 = _pick_model(arr, maximize_epochs)
    q_fin, s2, e2 = _pick_model(arr, None)
    _scatter_cloud(
        fig.add_subplot(gs[r, 1]),
        q_max,
        f"$q_0$ after the maximise phase\n(epoch {e1}, seed {s1})",
    )
    both = np.concatenate([q_fin, ref])
    _scatter_cloud(
        fig.add_subplot(gs[r, 2]),
        q_fin,
        f"$q_0$ at convergence\n(epoch {e2}, seed {s2})",
        frame=both,
    )
    _scatter_cloud(
        fig.add_subplot(gs[r, 3]),
        ref,
        f"$p_0$ ({len(ref)} data points used for $W_2$)\n(same window as $q_0$)",
        "C2",
        frame=both,
    )
    return ax


def fig2(
    bounds: pd.DataFrame,
    samples: Mapping[str, Mapping[str, np.ndarray]],
    out: Output,
) -> None:
    """Figure 2: per data set (rows; the first regulariser present, none by default), ln W2
    against ln J_DSM over training with the bound's line of slope 1/2, then q0 after the
    maximise phase, q0 at convergence, p0 (``samples``: data set -> its samples.npz arrays)."""
    reg = ordered(bounds["regularizer"], REGULARIZERS)[0]
    df = bounds[bounds["regularizer"] == reg]
    datasets = ordered(df["dataset"], DATASETS)
    missing = [ds for ds in datasets if ds not in samples]
    if missing:
        raise ValueError(f"samples: none for data set(s) {missing} (regulariser {reg})")
    norm = _epoch_norm(df)
    with figure(15.5, 3.5 * len(datasets) + 1.0, out) as fig:
        gs = fig.add_gridspec(len(datasets), 4, width_ratios=[2.1, 1, 1, 1])
        main_axes = [
            _fig2_row(fig, gs, r, df[df["dataset"] == ds], samples[ds], norm, out.maximize_epochs)
            for r, ds in enumerate(datasets)
        ]
        _epoch_colorbar(fig, norm, main_axes)
        legend_below(fig, main_axes[0], ncols=4)
        fig.suptitle(
            f"Figure 2 (regulariser {reg}): natural log of exact $W_2(p_0, q_0)$ against natural "
            f"log of $J_{{\\mathrm{{DSM}}}}$ (full squared norm) over training, all seeds; "
            "$q_T = p_T$, so the bound is "
            "$\\ln W_2 \\leq \\frac{1}{2}\\ln J_{\\mathrm{DSM}} + c$"
        )


AUTHORS_WINDOW = {"x": (0.0, 6.0), "y": (-4.0, 8.0)}
"""The window of the poster's Figure 2: x = ln(J_DSM / 2), y = ln W2."""


def fig2_authors(bounds: pd.DataFrame, out: Output) -> None:
    """Figure 2 on the authors' axes: per data set (the first regulariser present), ln W2
    against x = ln(J_DSM / 2) (their loss is half our squared norm) in the poster's window
    ``AUTHORS_WINDOW``, with the paper's line ln W2 = (x + ln 2) / 2 + c. The companion of
    ``fig2``, whose full range holds the maximise phase; points outside the window are counted
    in each title."""
    reg = ordered(bounds["regularizer"], REGULARIZERS)[0]
    df = bounds[bounds["regularizer"] == reg]
    datasets = ordered(df["dataset"], DATASETS)
    norm = _epoch_norm(df)
    (x0, x1), (y0, y1) = AUTHORS_WINDOW["x"], AUTHORS_WINDOW["y"]
    with figure(4.3 * len(datasets) + 0.6, 5.2, out) as fig:
        axes = list(fig.subplots(1, len(datasets), squeeze=False)[0])
        for ax, ds in zip(axes, datasets, strict=True):
            d = df[df["dataset"] == ds]
            pts = pd.DataFrame(
                {"x": ln(d["jdsm"] / 2), "y": ln(d["w2"]), "epoch": d["epoch"].to_numpy()}
            )
            inside = pts["x"].between(x0, x1) & pts["y"].between(y0, y1)
            dots(
                ax,
                pts,
                14,
                0.85,
                x="x",
                y="y",
                hue="epoch",
                hue_norm=norm,
                palette="viridis",
                legend=False,
            )
            c = float(final_rows(d)["log_intercept_paper"].mean())
            xs = np.array([x0, x1])
            ax.plot(xs, 0.5 * (xs + np.log(2.0)) + c, "k--", lw=1.2, label=_PAPER_LINE, zorder=4)
            floor = float(np.log(d["w2_floor"].mean()))
            ax.axhline(floor, color="0.3", ls=":", lw=1.2, label="$\\ln$ W2 sampling-noise floor")
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_xlabel("$\\ln(J_{\\mathrm{DSM}} / 2)$ (the authors' loss)")
            ax.set_ylabel(f"{LN_W2} (natural log)")
            ax.set_title(
                f"{ds}: {int(inside.sum())} of {len(pts)} checkpoints in the window",
                fontsize="small",
            )
        _epoch_colorbar(fig, norm, axes)
        legend_below(fig, axes[0], ncols=2)
        fig.suptitle(
            f"Figure 2 on the authors' axes (regulariser {reg}): the poster's window, "
            "x = ln(J_DSM / 2) in [0, 6], ln W2 in [-4, 8]; all seeds"
        )


def _fig3_loglog_row(
    axes: Sequence[Axes], d: pd.DataFrame, regs: Sequence[str], norm: SymLogNorm
) -> None:
    """The log-log panels of one data set, one per regulariser, on shared axes."""
    ds = d["dataset"].iloc[0]
    for c, reg in enumerate(regs):
        ax = axes[c]
        dr = d[d["regularizer"] == reg]
        if dr.empty:
            ax.set_visible(False)
            continue
        c_paper, c_grid = _loglog_panel(ax, dr, norm, bound_markers=False)
        ax.set_title(
            f"{ds}, {reg}\nintercept {c_paper:.2f} (authors'), {c_grid:.2f} (ours)",
            fontsize="small",
        )
        if c:
            ax.set_ylabel("")
    visible = [a for a in axes if a.get_visible()]
    for a in visible[1:]:
        a.sharex(visible[0])
        a.sharey(visible[0])
    visible[0].relim()
    visible[0].autoscale_view()


def _fig3_intercepts(ax: Axes, f: pd.DataFrame, regs: Sequence[str], ds: str) -> None:
    """The final models' intercepts per regulariser, by both L_s estimators."""
    icpt = f.melt(
        id_vars=["regularizer", "seed"],
        value_vars=["log_intercept_paper", "log_intercept"],
        var_name="estimator",
        value_name="intercept",
    )
    icpt["estimator"] = icpt["estimator"].map(
        {"log_intercept_paper": "authors' $L_s$", "log_intercept": "our $L_s$"}
    )
    sns.pointplot(
        icpt,
        x="regularizer",
        y="intercept",
        hue="estimator",
        order=regs,
        errorbar=band(f),
        dodge=0.3,
        palette=["k", "C3"],
        markers=["o", "s"],
        linestyles="none",
        ax=ax,
    )
    ax.set_ylabel("intercept $c$ (final model)")
    ax.set_title(f"{ds}: intercept $c$ of the bound", fontsize="small")
    ax.legend(fontsize="x-small", title=None)


def _fig3_converged(
    ax: Axes, f: pd.DataFrame, col: str, lab: str, regs: Sequence[str], ds: str
) -> None:
    """One converged quantity of the final models per regulariser: seeds as dots, the mean
    with its band."""
    with seeded_jitter():
        sns.stripplot(
            f,
            x="regularizer",
            y=col,
            hue="regularizer",
            order=regs,
            palette=palette(regs),
            legend=False,
            size=4,
            alpha=0.6,
            jitter=0.1,
            ax=ax,
        )
    sns.pointplot(
        f,
        x="regularizer",
        y=col,
        order=regs,
        errorbar=band(f),
        color="k",
        markers="_",
        linestyles="none",
        ax=ax,
    )
    ax.set_ylabel(f"{lab}, final model")
    ax.set_title(f"{ds}: converged {lab}", fontsize="small")


def fig3(
    bounds: pd.DataFrame,
    out: Output,
) -> None:
    """Figure 3: the log-log view per regulariser (columns) and data set (rows), then the final
    models' intercepts, ln J_DSM and ln W2 per regulariser (mean and min-max over seeds)."""
    df = bounds
    datasets = ordered(df["dataset"], DATASETS)
    regs = ordered(df["regularizer"], REGULARIZERS)
    norm = _epoch_norm(df)
    fin = final_rows(df).copy()
    fin["ln_jdsm"], fin["ln_w2"] = ln(fin["jdsm"]), ln(fin["w2"])
    nc = len(regs) + 3
    with figure(3.2 * nc + 0.8, 3.1 * len(datasets) + 1.1, out) as fig:
        axes = fig.subplots(len(datasets), nc, squeeze=False)
        for r, ds in enumerate(datasets):
            _fig3_loglog_row(axes[r, : len(regs)], df[df["dataset"] == ds], regs, norm)
            f = fin[fin["dataset"] == ds]
            _fig3_intercepts(axes[r, len(regs)], f, regs, ds)
            for k, (col, lab) in enumerate([("ln_jdsm", LN_JDSM), ("ln_w2", LN_W2)]):
                _fig3_converged(axes[r, len(regs) + 1 + k], f, col, lab, regs, ds)
            for a in axes[r, len(regs) :]:
                a.set_xlabel("")
                a.tick_params(axis="x", labelsize="x-small", rotation=15)
        _epoch_colorbar(fig, norm, axes[:, len(regs) - 1].tolist())
        legend_below(fig, axes[0, 0], ncols=3, keep=axes[:, len(regs)].tolist())
        fig.suptitle(
            "Figure 3: natural log of exact $W_2(p_0, q_0)$ against natural log of "
            "$J_{\\mathrm{DSM}}$ per regulariser (all seeds, coloured by epoch)\nright: final "
            "models' intercept $c$, $\\ln J_{\\mathrm{DSM}}$, $\\ln W_2$ "
            f"({seed_note(df)}; dots: seeds)"
        )
