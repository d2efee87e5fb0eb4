"""What every figure shares: reading its tables, colours and notes, and writing it.

Quantities (docs/paper.md section 3):
    J_DSM = 1/2 sum_i b_i/(1-abar_i) E||eps_theta - eps||^2  (full squared norm, not halved again),
    J_SM  = 1/2 sum_i b_i E||s_theta - s*||^2,  J_DSM = J_SM + dsm_floor (Corollary 3),
    W2(p0, q0) <= exp(c) sqrt(J_DSM) + I_T W2(p_T, q_T),  c = 1/2 ln(2 sum_i b_i I_i^2) (Thm 1),
so ln W2 = 1/2 ln J_DSM + c is the paper's line when q_T = p_T. All logarithms are natural.
Bands are min-max over seeds (seaborn ``errorbar=("pi", 100)``) around the mean over seeds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scorew2.io import CorruptFileError, atomic_path, load_csv, load_npz
from scorew2.runs import REGULARIZERS

__all__ = [
    "BAND_NOTE",
    "LN_JDSM",
    "LN_W2",
    "Output",
    "PathLike",
    "band",
    "dots",
    "figure",
    "legend_below",
    "ln",
    "load_samples",
    "load_table",
    "palette",
    "require",
    "save_figure",
    "seed_note",
    "seeded_jitter",
    "shade_maximise",
]

PathLike = str | os.PathLike[str]

BAND = ("pi", 100)
BAND_NOTE = "min-max over seeds, seaborn errorbar=('pi', 100)"
STYLE = {"axes.grid": True, "grid.alpha": 0.35}
LN_W2 = r"$\ln W_2(p_0, q_0)$"
LN_JDSM = r"$\ln J_{\mathrm{DSM}}$"


# --------------------------------------------------------------------------- inputs
def load_table(paths: Sequence[PathLike], required: Sequence[str]) -> pd.DataFrame:
    """Concatenate the CSV tables ``paths`` (in that order), each with the ``required`` columns.

    Raises ``CorruptFileError`` (a ValueError) naming the file and the missing columns, and
    ValueError when ``paths`` is empty.
    """
    if not paths:
        raise ValueError("inputs: no table given")
    df = pd.concat([load_csv(p, required=tuple(required)) for p in paths], ignore_index=True)
    for col in ("T", "seed", "epoch", "step"):
        if col in df.columns:
            df[col] = df[col].astype(np.int64)
    if "violation" in df.columns:
        df["violation"] = df["violation"].astype(str).str.strip().str.lower() == "true"
    return df


def load_samples(
    paths: Sequence[PathLike], datasets: Sequence[str]
) -> dict[str, dict[str, np.ndarray]]:
    """The ``samples.npz`` files ``paths``, keyed by their data sets ``datasets`` (same order)."""
    if len(paths) != len(datasets):
        raise ValueError(f"inputs: {len(paths)} samples files for {len(datasets)} data sets")
    out: dict[str, dict[str, np.ndarray]] = {}
    for path, ds in zip(paths, datasets, strict=True):
        arrays = load_npz(path, required=("samples", "seeds", "epochs", "ref"))
        s = arrays["samples"]
        if s.ndim != 3 or s.shape[0] != len(arrays["seeds"]) or s.shape[0] != len(arrays["epochs"]):
            raise CorruptFileError(
                f"{path}: samples must be (M, n, d) with M = len(seeds) = len(epochs), got "
                f"{s.shape}, {len(arrays['seeds'])}, {len(arrays['epochs'])}"
            )
        out[ds] = arrays
    return out


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError unless ``df`` (the table ``what``) has every one of ``columns``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}")


# --------------------------------------------------------------------------- styling
def palette(regs: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per regulariser, the same in every figure."""
    colours = sns.color_palette("deep", 10)
    known = {r: colours[i] for i, r in enumerate(REGULARIZERS)}
    extra = iter(colours[len(REGULARIZERS) :])
    return {r: known[r] if r in known else next(extra) for r in regs}


def ln(x: Any) -> np.ndarray:
    """Natural log, NaN (dropped by seaborn) for values <= 0."""
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), np.nan)


def seed_note(df: pd.DataFrame) -> str:
    """How a figure aggregates seeds: a mean with a min-max band, or one seed."""
    seeds = ", ".join(str(int(s)) for s in sorted(df["seed"].unique()))
    if df["seed"].nunique() < 2:
        return f"single seed ({seeds}), no band"
    return f"mean over seeds {seeds}; band: {BAND_NOTE}"


def band(df: pd.DataFrame) -> tuple[str, int] | None:
    """Seaborn's ``errorbar`` for ``df``: min-max over seeds, none for a single seed."""
    return BAND if df["seed"].nunique() > 1 else None


def dots(ax: Axes, data: pd.DataFrame, size: float, alpha: float, **mapping: Any) -> None:
    """Points of ``data`` without edges, above the lines (z-order 3): seaborn's scatterplot
    with ``mapping`` (x, y, hue, ...) and marker area ``size``."""
    sns.scatterplot(data, **mapping, s=size, edgecolor="none", alpha=alpha, ax=ax, zorder=3)


def shade_maximise(ax: Axes, maximize_epochs: int) -> None:
    """Grey out the maximise phase (epochs 0..maximize_epochs) of an epoch axis."""
    if maximize_epochs > 0:
        ax.axvspan(0, maximize_epochs, color="0.85", zorder=0, lw=0, label="maximise phase")


def legend_below(
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


@contextlib.contextmanager
def seeded_jitter(seed: int = 0) -> Iterator[None]:
    """Seaborn's stripplot jitter draws from NumPy's global generator: seed it for the plot (so
    a redraw is byte-identical) and give the caller's state back afterwards."""
    state = np.random.get_state()  # noqa: NPY002 (the global one is what seaborn uses)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


# --------------------------------------------------------------------------- output
class Output(NamedTuple):
    """Where and how a figure is written: one path per format (the suffix names it), the
    resolution of raster formats, and the maximise-phase length of the training curves."""

    paths: Sequence[PathLike]
    dpi: float = 150
    maximize_epochs: int = 10


@contextlib.contextmanager
def figure(width: float, height: float, out: Output) -> Iterator[Figure]:
    """A new figure of ``width`` x ``height`` inches in the figures' style (seaborn whitegrid,
    paper context, constrained layout), written to every path of ``out`` when the block ends
    without an error."""
    if not out.paths:
        raise ValueError("outputs: at least one output path is required")
    with sns.axes_style("whitegrid", STYLE), sns.plotting_context("paper"):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        save_figure(fig, out.paths, out.dpi)


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
