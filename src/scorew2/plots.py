"""The paper's figures (Kwon, Fan & Lee 2022: figures 1-4, appendix F) from the pipeline's tables.

Every figure function has the signature ``figX(inputs, outputs, *, dpi, maximize_epochs)``:
``inputs`` is a list of files (CSV tables are recognised by their columns, ``.npz`` files by
their arrays and, for ``samples.npz``, by the path layout
``.../{experiment}/{dataset}/{regularizer}/T{T}/samples.npz``), ``outputs`` one path per format
(the suffix picks the format). Each output is written atomically.

Quantities (section 3 of PAPER.md):
    J_DSM = 1/2 sum_i b_i/(1-abar_i) E||eps_theta - eps||^2  (full squared norm, not halved again),
    J_SM  = 1/2 sum_i b_i E||s_theta - s*||^2,  J_DSM = J_SM + dsm_floor (Corollary 3),
    W2(p0, q0) <= exp(c) sqrt(J_DSM) + I_T W2(p_T, q_T),  c = 1/2 ln(2 sum_i b_i I_i^2) (Thm 1),
so ln W2 = 1/2 ln J_DSM + c is the paper's line when q_T = p_T. All logarithms are natural.
Bands are min-max over seeds (seaborn ``errorbar=("pi", 100)``) around the mean over seeds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import SymLogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from scorew2.io import CorruptFileError, atomic_path, load_csv, load_npz

PathLike = str | os.PathLike[str]

KEY = ("experiment", "dataset", "regularizer", "T", "seed", "epoch")
BOUND_COLUMNS = (
    *KEY,
    "jdsm",
    "jsm",
    "dsm_floor",
    "w2",
    "w2_floor",
    "w2_T",
    "log_intercept",
    "log_intercept_paper",
    "log_I_T",
    "offset",
    "corollary2_offset",
    "log_bound",
    "violation",
)
LIPSCHITZ_COLUMNS = (*KEY, "step", "L_s", "L_paper", "L_exact")
_LIPSCHITZ_ONLY = frozenset(LIPSCHITZ_COLUMNS) - frozenset(KEY)

DATASET_ORDER = ("four_clusters", "moons", "gaussian", "imbalanced_clusters", "swiss_roll")
REGULARIZER_ORDER = ("none", "spectral_norm", "weight_clip")
BAND = ("pi", 100)
BAND_NOTE = "min-max over seeds, seaborn errorbar=('pi', 100)"

_STYLE = {"axes.grid": True, "grid.alpha": 0.35}
_LN_W2 = r"$\ln W_2(p_0, q_0)$"
_LN_JDSM = r"$\ln J_{\mathrm{DSM}}$"
_PAPER_LINE = "paper's line (authors' $L_s$ estimator, final model)"
_GRID_LINE = "same, our $L_s$ estimator (final model)"


# --------------------------------------------------------------------------- input helpers
def _csv_kind(path: PathLike) -> str:
    """'lipschitz' when the header has a column only lipschitz.csv has, else 'bound'."""
    try:
        cols = set(pd.read_csv(path, nrows=0).columns)
    except Exception:
        load_csv(path)  # raises FileNotFoundError / CorruptFileError naming the file
        raise
    return "lipschitz" if cols & _LIPSCHITZ_ONLY else "bound"


def load_tables(inputs: Sequence[PathLike], kind: str, required: Sequence[str]) -> pd.DataFrame:
    """Concatenate the ``kind`` ('bound' or 'lipschitz') CSV tables among ``inputs``.

    Raises ``CorruptFileError`` (a ValueError) naming the file and the missing columns, and
    ValueError when no table of that kind is among the inputs.
    """
    paths = [p for p in inputs if Path(p).suffix == ".csv" and _csv_kind(p) == kind]
    if not paths:
        raise ValueError(f"inputs: no {kind} table (.csv) among {[str(p) for p in inputs]}")
    frames = [load_csv(p, required=tuple(required)) for p in paths]
    df = pd.concat(frames, ignore_index=True)
    for col in ("T", "seed", "epoch", "step"):
        if col in df.columns:
            df[col] = df[col].astype(np.int64)
    if "violation" in df.columns:
        df["violation"] = df["violation"].astype(str).str.strip().str.lower() == "true"
    return df


def load_samples(inputs: Sequence[PathLike]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """The ``samples.npz`` files among ``inputs``, keyed by (dataset, regularizer) from the path."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for p in inputs:
        path = Path(p)
        if path.suffix != ".npz":
            continue
        try:
            with np.load(path, allow_pickle=False) as z:
                names = set(z.files)
        except Exception:
            load_npz(path)  # raises naming the file
            raise
        if "samples" not in names:
            continue  # a data set file (train, fresh): p0 is taken from samples.npz's ref
        if len(path.parts) < 5:
            raise ValueError(f"{path}: expected .../{{dataset}}/{{regularizer}}/T{{T}}/samples.npz")
        arrays = load_npz(path, required=("samples", "seeds", "epochs", "ref"))
        s = arrays["samples"]
        if s.ndim != 3 or s.shape[0] != len(arrays["seeds"]) or s.shape[0] != len(arrays["epochs"]):
            raise CorruptFileError(
                f"{path}: samples must be (M, n, d) with M = len(seeds) = len(epochs), got "
                f"{s.shape}, {len(arrays['seeds'])}, {len(arrays['epochs'])}"
            )
        out[(path.parts[-4], path.parts[-3])] = arrays
    return out


def _ordered(values: Any, order: Sequence[str]) -> list[str]:
    """Unique values, those in ``order`` first in that order, then the rest sorted."""
    uniq = sorted(set(values))
    return [v for v in order if v in uniq] + [v for v in uniq if v not in order]


def _palette(regs: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per regulariser, the same in every figure."""
    colours = sns.color_palette("deep", 10)
    known = {r: colours[i] for i, r in enumerate(REGULARIZER_ORDER)}
    extra = iter(colours[len(REGULARIZER_ORDER) :])
    return {r: known[r] if r in known else next(extra) for r in regs}


def _ln(x: Any) -> np.ndarray:
    """Natural log, NaN (dropped by seaborn) for values <= 0."""
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), np.nan)


def _final(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of each seed's last checkpoint (per experiment, dataset, regulariser, T)."""
    last = df.groupby(["experiment", "dataset", "regularizer", "T", "seed"])["epoch"].transform(
        "max"
    )
    return df[df["epoch"] == last]


def _seed_note(df: pd.DataFrame) -> str:
    seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))
    if df["seed"].nunique() < 2:
        return f"single seed ({seeds}), no band"
    return f"mean over seeds {seeds}; band: {BAND_NOTE}"


def _band(df: pd.DataFrame) -> tuple[str, int] | None:
    return BAND if df["seed"].nunique() > 1 else None


# --------------------------------------------------------------------------- output helpers
def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, outputs: Sequence[PathLike], dpi: float) -> None:
    """Write ``fig`` to every output path atomically; the suffix names the format."""
    if not outputs:
        raise ValueError("outputs: at least one output path is required")
    for out in outputs:
        fmt = Path(out).suffix.lstrip(".").lower()
        if not fmt:
            raise ValueError(f"outputs: {out} has no suffix to name the format")
        meta = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)


@contextlib.contextmanager
def _seeded_jitter(seed: int = 0) -> Iterator[None]:
    """Seaborn's stripplot jitter draws from NumPy's global generator: seed it for the plot (so
    a redraw is byte-identical) and give the caller's state back afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (the global one is what seaborn uses)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _legend_below(
    fig: Figure, ax: Axes, ncols: int = 4, extra: Sequence[Any] = (), keep: Sequence[Axes] = ()
) -> None:
    """One figure legend under the panels, built from ``ax``'s handles (plus ``extra``); the
    per-panel legends are removed except those of the ``keep`` axes."""
    handles, labels = ax.get_legend_handles_labels()
    for h in extra:
        handles.append(h)
        labels.append(h.get_label())
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels, strict=True):
        if not lab.startswith("_"):
            seen.setdefault(lab, h)
    for a in fig.axes:
        if a.get_legend() is not None and not any(a is k for k in keep):
            a.get_legend().remove()
    fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncols=ncols)


def _shade_maximise(ax: Axes, maximize_epochs: int) -> None:
    if maximize_epochs > 0:
        ax.axvspan(0, maximize_epochs, color="0.85", zorder=0, lw=0, label="maximise phase")


# --------------------------------------------------------------------------- figure 1
def fig1(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
) -> None:
    """Figure 1: J_DSM (top row) and exact W2(p0, q0) (bottom row) against epoch, per data set."""
    df = load_tables(inputs, "bound", (*KEY, "jdsm", "w2", "dsm_floor", "w2_floor"))
    datasets = _ordered(df["dataset"], DATASET_ORDER)
    regs = _ordered(df["regularizer"], REGULARIZER_ORDER)
    pal = _palette(regs)
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(3.9 * len(datasets) + 0.4, 6.2)
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
                _shade_maximise(ax, maximize_epochs)
                sns.lineplot(
                    d,
                    x="epoch",
                    y=col,
                    hue="regularizer",
                    hue_order=regs,
                    palette=pal,
                    estimator="mean",
                    errorbar=_band(d),
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
        _legend_below(fig, axes[0, 0], ncols=len(regs) + 3, extra=extra)
        fig.suptitle(
            "Figure 1: $J_{\\mathrm{DSM}}$ and exact $W_2(p_0, q_0)$ over training; "
            f"grey: epochs 1-{maximize_epochs} maximise the loss\n{_seed_note(df)}"
        )
        save_figure(fig, outputs, dpi)


# --------------------------------------------------------------------------- log-log panels
def _loglog_panel(
    ax: Axes, d: pd.DataFrame, norm: SymLogNorm, *, bound_markers: bool
) -> tuple[float, float]:
    """ln W2 against ln J_DSM (points coloured by epoch), the paper's line, ours, noise floor.

    Returns the two intercepts (authors' estimator, our grid estimator) of the final model.
    """
    x, y = _ln(d["jdsm"]), _ln(d["w2"])
    pts = pd.DataFrame({"x": x, "y": y, "epoch": d["epoch"].to_numpy()})
    sns.scatterplot(
        pts,
        x="x",
        y="y",
        hue="epoch",
        hue_norm=norm,
        palette="viridis",
        legend=False,
        s=14,
        edgecolor="none",
        alpha=0.85,
        ax=ax,
        zorder=3,
    )
    fin = _final(d)
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
    ax.set_xlabel(f"{_LN_JDSM} (natural log)")
    ax.set_ylabel(f"{_LN_W2} (natural log)")
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


def fig2(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
) -> None:
    """Figure 2: per data set (rows, regulariser none), ln W2 against ln J_DSM over training
    with the bound's line of slope 1/2, then q0 after the maximise phase, q0 at convergence, p0."""
    req = (
        *KEY,
        "jdsm",
        "w2",
        "w2_floor",
        "log_intercept",
        "log_intercept_paper",
        "log_bound",
        "violation",
    )
    df = load_tables(inputs, "bound", req)
    reg = _ordered(df["regularizer"], REGULARIZER_ORDER)[0]
    df = df[df["regularizer"] == reg]
    samples = load_samples(inputs)
    datasets = _ordered(df["dataset"], DATASET_ORDER)
    missing = [ds for ds in datasets if (ds, reg) not in samples]
    if missing:
        raise ValueError(f"inputs: no samples.npz for data set(s) {missing}, regulariser {reg}")
    norm = _epoch_norm(df)
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(15.5, 3.5 * len(datasets) + 1.0)
        gs = fig.add_gridspec(len(datasets), 4, width_ratios=[2.1, 1, 1, 1])
        main_axes = []
        for r, ds in enumerate(datasets):
            d = df[df["dataset"] == ds]
            ax = fig.add_subplot(gs[r, 0])
            main_axes.append(ax)
            c_paper, c_grid = _loglog_panel(ax, d, norm, bound_markers=True)
            nv, n = int(d["violation"].sum()), len(d)
            ax.set_title(
                f"{ds}: intercept {c_paper:.2f} (authors' $L_s$), {c_grid:.2f} (our $L_s$); "
                f"bound violated at {nv}/{n} checkpoints",
                fontsize="small",
            )
            arr = samples[(ds, reg)]
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
        _epoch_colorbar(fig, norm, main_axes)
        _legend_below(fig, main_axes[0], ncols=4)
        fig.suptitle(
            f"Figure 2 (regulariser {reg}): natural log of exact $W_2(p_0, q_0)$ against natural "
            f"log of $J_{{\\mathrm{{DSM}}}}$ (full squared norm) over training, all seeds; "
            "$q_T = p_T$, so the bound is "
            "$\\ln W_2 \\leq \\frac{1}{2}\\ln J_{\\mathrm{DSM}} + c$"
        )
        save_figure(fig, outputs, dpi)


# --------------------------------------------------------------------------- figure 3
def fig3(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
) -> None:
    """Figure 3: the log-log view per regulariser (columns) and data set (rows), then the final
    models' intercepts, ln J_DSM and ln W2 per regulariser (mean and min-max over seeds)."""
    del maximize_epochs  # the log-log view colours points by epoch instead
    df = load_tables(
        inputs,
        "bound",
        (*KEY, "jdsm", "w2", "w2_floor", "log_intercept", "log_intercept_paper", "log_bound"),
    )
    datasets = _ordered(df["dataset"], DATASET_ORDER)
    regs = _ordered(df["regularizer"], REGULARIZER_ORDER)
    pal = _palette(regs)
    norm = _epoch_norm(df)
    fin = _final(df).copy()
    fin["ln_jdsm"], fin["ln_w2"] = _ln(fin["jdsm"]), _ln(fin["w2"])
    nc = len(regs) + 3
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(3.2 * nc + 0.8, 3.1 * len(datasets) + 1.1)
        axes = fig.subplots(len(datasets), nc, squeeze=False)
        for r, ds in enumerate(datasets):
            d = df[df["dataset"] == ds]
            loglog = axes[r, : len(regs)]
            for c, reg in enumerate(regs):
                ax = loglog[c]
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
            visible = [a for a in loglog if a.get_visible()]
            for a in visible[1:]:
                a.sharex(visible[0])
                a.sharey(visible[0])
            visible[0].relim()
            visible[0].autoscale_view()
            f = fin[fin["dataset"] == ds]
            icpt = f.melt(
                id_vars=["regularizer", "seed"],
                value_vars=["log_intercept_paper", "log_intercept"],
                var_name="estimator",
                value_name="intercept",
            )
            icpt["estimator"] = icpt["estimator"].map(
                {"log_intercept_paper": "authors' $L_s$", "log_intercept": "our $L_s$"}
            )
            ax = axes[r, len(regs)]
            sns.pointplot(
                icpt,
                x="regularizer",
                y="intercept",
                hue="estimator",
                order=regs,
                errorbar=_band(f),
                dodge=0.3,
                palette=["k", "C3"],
                markers=["o", "s"],
                linestyles="none",
                ax=ax,
            )
            ax.set_ylabel("intercept $c$ (final model)")
            ax.set_title(f"{ds}: intercept $c$ of the bound", fontsize="small")
            ax.legend(fontsize="x-small", title=None)
            for k, (col, lab) in enumerate([("ln_jdsm", _LN_JDSM), ("ln_w2", _LN_W2)]):
                ax = axes[r, len(regs) + 1 + k]
                with _seeded_jitter():
                    sns.stripplot(
                        f,
                        x="regularizer",
                        y=col,
                        hue="regularizer",
                        order=regs,
                        palette=pal,
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
                    errorbar=_band(f),
                    color="k",
                    markers="_",
                    linestyles="none",
                    ax=ax,
                )
                ax.set_ylabel(f"{lab}, final model")
                ax.set_title(f"{ds}: converged {lab}", fontsize="small")
            for a in axes[r, len(regs) :]:
                a.set_xlabel("")
                a.tick_params(axis="x", labelsize="x-small", rotation=15)
        _epoch_colorbar(fig, norm, axes[:, len(regs) - 1].tolist())
        _legend_below(fig, axes[0, 0], ncols=3, keep=axes[:, len(regs)].tolist())
        fig.suptitle(
            "Figure 3: natural log of exact $W_2(p_0, q_0)$ against natural log of "
            "$J_{\\mathrm{DSM}}$ per regulariser (all seeds, coloured by epoch)\nright: final "
            "models' intercept $c$, $\\ln J_{\\mathrm{DSM}}$, $\\ln W_2$ "
            f"({_seed_note(df)}; dots: seeds)"
        )
        save_figure(fig, outputs, dpi)


# --------------------------------------------------------------------------- figure F
def figF(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
) -> None:
    """Appendix F: J_SM against J_DSM over training (log-log), with J_SM = J_DSM - dsm_floor,
    the wall J_DSM = dsm_floor and the diagonal J_SM = J_DSM."""
    del maximize_epochs
    df = load_tables(inputs, "bound", (*KEY, "jdsm", "jsm", "dsm_floor"))
    datasets = _ordered(df["dataset"], DATASET_ORDER)
    regs = _ordered(df["regularizer"], REGULARIZER_ORDER)
    pal = _palette(regs)
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(4.2 * len(datasets) + 0.4, 4.6)
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, ds in zip(axes, datasets, strict=True):
            d = df[(df["dataset"] == ds) & (df["jdsm"] > 0) & (df["jsm"] > 0)]
            sns.scatterplot(
                d,
                x="jdsm",
                y="jsm",
                hue="regularizer",
                hue_order=regs,
                palette=pal,
                s=12,
                edgecolor="none",
                alpha=0.7,
                ax=ax,
                zorder=3,
            )
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
        _legend_below(fig, axes[0], ncols=len(regs) + 3)
        fig.suptitle(
            "Appendix F: $J_{\\mathrm{SM}}$ against $J_{\\mathrm{DSM}}$ at every checkpoint "
            "and seed; $J_{\\mathrm{DSM}} - J_{\\mathrm{SM}}$ is the $\\theta$-free DSM floor"
        )
        save_figure(fig, outputs, dpi)


# --------------------------------------------------------------------------- figure 4
def _closest_T(values: Any, target: int) -> int:
    return int(min(sorted(set(int(v) for v in values)), key=lambda t: (abs(t - target), -t)))


def fig4a(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
    target_T: int = 100,
) -> None:
    """Figure 4a: one-sided Lipschitz constant L_s(t) of the final model against step t for the
    run with T = ``target_T`` (or the closest T present): grid and authors' estimators, exact."""
    del maximize_epochs
    df = load_tables(inputs, "lipschitz", LIPSCHITZ_COLUMNS)
    T = _closest_T(df["T"], target_T)
    d = df[df["T"] == T]
    group = (
        d[["experiment", "dataset", "regularizer"]]
        .drop_duplicates()
        .sort_values(["experiment", "dataset", "regularizer"])
        .iloc[0]
    )
    d = d[
        (d["experiment"] == group["experiment"])
        & (d["dataset"] == group["dataset"])
        & (d["regularizer"] == group["regularizer"])
    ]
    d = _final(d)
    epochs = ", ".join(str(int(e)) for e in sorted(d["epoch"].unique()))
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(7.6, 5.0)
        ax = fig.add_subplot()
        band = _band(d)
        sns.lineplot(
            d,
            x="step",
            y="L_s",
            errorbar=band,
            color="C0",
            ax=ax,
            label="model, our estimator (data-region grid and its own sampler paths)",
        )
        sns.lineplot(
            d,
            x="step",
            y="L_paper",
            errorbar=band,
            color="C1",
            ls="--",
            ax=ax,
            label="model, authors' estimator (pairs on 10x10 grid of $[0,0.9]^2$)",
        )
        ex = d.groupby("step", as_index=False)["L_exact"].mean()
        sns.lineplot(
            ex,
            x="step",
            y="L_exact",
            color="k",
            lw=1.2,
            ax=ax,
            label="exact score of the noised data (grid)",
        )
        ax.axhline(-1.0, color="C3", ls=":", lw=1.2, label="$-1$ (score of $N(0, I)$)")
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_yscale("symlog", linthresh=2.0, linscale=1.5)
        ax.set_xlim(0, T - 1)
        ax.set_xlabel(f"step $t$ (0 = data, {T - 1} = most noised)")
        ax.set_ylabel("one-sided Lipschitz constant $L_s(t)$\n(symlog: linear in [-2, 2])")
        ax.legend(fontsize="small", loc="best")
        ax.set_title(
            f"Figure 4a: $L_s(t)$ of the final model (epoch {epochs}), "
            f"T = {T}, {group['dataset']}\n{_seed_note(d)}",
            fontsize="medium",
        )
        save_figure(fig, outputs, dpi)


def fig4b(
    inputs: Sequence[PathLike],
    outputs: Sequence[PathLike],
    *,
    dpi: float = 150,
    maximize_epochs: int = 10,
) -> None:
    """Figure 4b: the bound's offset I(T) W2(p_T, q_T) against T, with the final W2(p0, q0),
    Corollary 2's offset exp(sum b_i L_i) W2(p0, N(0, I)) and the whole bound."""
    del maximize_epochs
    df = load_tables(
        inputs, "bound", (*KEY, "w2", "w2_T", "offset", "corollary2_offset", "log_bound")
    )
    fin = _final(df).copy()
    fin["bound"] = np.exp(fin["log_bound"])
    long = fin.melt(
        id_vars=["T", "seed"],
        value_vars=["offset", "bound", "corollary2_offset", "w2"],
        var_name="quantity",
    )
    names = {
        "offset": "offset $I(T)\\,W_2(p_T, q_T)$",
        "bound": "whole bound on $W_2(p_0, q_0)$",
        "corollary2_offset": "Corollary 2 offset $e^{\\sum b_i L_i} W_2(p_0, N(0,I))$",
        "w2": "exact $W_2(p_0, q_0)$, final model",
    }
    long["quantity"] = long["quantity"].map(names)
    long = long[long["value"] > 0]
    Ts = sorted(fin["T"].unique())
    with sns.axes_style("whitegrid", _STYLE), sns.plotting_context("paper"):
        fig = _new_figure(7.6, 5.0)
        ax = fig.add_subplot()
        sns.lineplot(
            long,
            x="T",
            y="value",
            hue="quantity",
            style="quantity",
            hue_order=list(names.values()),
            style_order=list(names.values()),
            palette=["C0", "0.4", "C2", "C3"],
            markers=True,
            dashes=True,
            errorbar=_band(fin),
            ax=ax,
        )
        ax.set_yscale("log")
        ax.set_xticks(Ts)
        ax.set_xlabel("number of steps $T$")
        ax.set_ylabel("value (log scale)")
        ax.legend(fontsize="small", title=None)
        ax.set_title(
            f"Figure 4b: bound terms against $T$ (final models, prior $N(0, I)$, "
            f"{', '.join(sorted(fin['dataset'].unique()))})\n{_seed_note(fin)}",
            fontsize="medium",
        )
        save_figure(fig, outputs, dpi)


FIGURES: dict[str, Callable[..., None]] = {
    "fig1": fig1,
    "fig2": fig2,
    "fig3": fig3,
    "figF": figF,
    "fig4a": fig4a,
    "fig4b": fig4b,
}


def draw(name: str, inputs: Sequence[PathLike], outputs: Sequence[PathLike], **kw: Any) -> None:
    """Draw figure ``name`` (one of FIGURES) from ``inputs`` into every path of ``outputs``."""
    if name not in FIGURES:
        raise ValueError(f"name: unknown figure {name!r}; expected one of {sorted(FIGURES)}")
    FIGURES[name](list(inputs), list(outputs), **kw)
