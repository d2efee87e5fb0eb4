"""The paper's figures (figures 1-4 and appendix F) from the pipeline's tables.

Each figure is a function of DataFrames (``training``: fig1, figF; ``loglog``: fig2, fig3;
``tsweep``: fig4a, fig4b; ``certified``: figC, ``robustness``: figR and ``dimsweep``: figD,
not in the paper)
that writes one file per path of ``outputs`` (the suffix picks the format), atomically.
``FIGURES`` names, for each figure, its function and the columns of each table it reads;
``draw`` reads the named input files of a figure rule and draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from scorew2.plots.certified import figC
from scorew2.plots.common import Output, PathLike, load_samples, load_table
from scorew2.plots.dimsweep import figD
from scorew2.plots.loglog import fig2, fig2_authors, fig3
from scorew2.plots.robustness import figR
from scorew2.plots.training import fig1, figF
from scorew2.plots.tsweep import fig4a, fig4b
from scorew2.runs import CHECKPOINT_KEYS

__all__ = [
    "FIGURES",
    "FigureSpec",
    "Output",
    "draw",
    "fig1",
    "fig2",
    "fig2_authors",
    "fig3",
    "fig4a",
    "fig4b",
    "figC",
    "figD",
    "figF",
    "figR",
]

_K = CHECKPOINT_KEYS


class FigureSpec(NamedTuple):
    """A figure: its function, and the columns it needs of each named table (``samples``: the
    samples.npz files of figure 2, no columns)."""

    draw: Callable[..., None]
    inputs: Mapping[str, tuple[str, ...]]


_LOGLOG = (*_K, "jdsm", "w2", "w2_floor", "log_intercept", "log_intercept_paper", "log_bound")

FIGURES: dict[str, FigureSpec] = {
    "fig1": FigureSpec(fig1, {"bounds": (*_K, "jdsm", "w2", "dsm_floor", "w2_floor")}),
    "fig2": FigureSpec(fig2, {"bounds": (*_LOGLOG, "violation"), "samples": ()}),
    "fig2_authors": FigureSpec(
        fig2_authors, {"bounds": (*_K, "jdsm", "w2", "w2_floor", "log_intercept_paper")}
    ),
    "fig3": FigureSpec(fig3, {"bounds": _LOGLOG}),
    "figF": FigureSpec(figF, {"bounds": (*_K, "jdsm", "jsm", "dsm_floor")}),
    "fig4a": FigureSpec(fig4a, {"lipschitz": (*_K, "step", "L_s", "L_paper", "L_exact")}),
    "figC": FigureSpec(
        figC,
        {
            "bounds": (*_K, "w2", "log_bound", "log_bound_cert", "certified"),
            "lipschitz": (*_K, "step", "L_s"),
            "certified": (*_K, "step", "L_cert_upper", "L_cert_lower"),
        },
    ),
    "fig4b": FigureSpec(
        fig4b, {"bounds": (*_K, "w2", "w2_T", "offset", "corollary2_offset", "log_bound")}
    ),
    "figD": FigureSpec(
        figD,
        {
            "bounds": (*_K, "jdsm", "dsm_floor", "w2", "w2_floor", "log_intercept", "log_bound"),
            "lipschitz": (*_K, "step", "L_s", "L_exact", "L_law"),
            "moments": (*_K, "w2_gelbrich", "w2_gelbrich_floor", "w2_trivial"),
        },
    ),
    "figR": FigureSpec(
        figR,
        {"robustness": (*_K, "family", "delta", "w2_q", "w2_p", "rhs_measured", "rhs", "rhs_cert")},
    ),
}


def draw(
    name: str,
    inputs: Mapping[str, Sequence[PathLike]],
    outputs: Sequence[PathLike],
    *,
    sample_datasets: Sequence[str] = (),
    dpi: float = 150,
    maximize_epochs: int = 10,
    **options: Any,
) -> None:
    """Draw figure ``name`` from its named input files into every path of ``outputs``.

    Parameters
    ----------
    name : str
        One of ``FIGURES``.
    inputs : mapping
        Table name (``bounds``, ``lipschitz``, ``certified``, ``robustness``, ``moments``,
        ``samples``) ->
        the files of every run group, as the figure rules name them.
    outputs : sequence of path-like
        One path per format.
    sample_datasets : sequence of str
        The data set of each ``samples`` file (figure 2).
    dpi : float
        Resolution of raster formats.
    maximize_epochs : int
        Length of the maximise phase (shaded in the training curves).
    **options
        Figure-specific options (fig4a: ``target_T``).

    Raises
    ------
    ValueError
        Unknown figure, a table it needs not given, or a file without a needed column (then a
        ``CorruptFileError`` naming the file and the column).
    """
    if name not in FIGURES:
        raise ValueError(f"name: unknown figure {name!r}; expected one of {sorted(FIGURES)}")
    spec = FIGURES[name]
    missing = [t for t in spec.inputs if not inputs.get(t)]
    if missing:
        raise ValueError(f"{name}: no {', '.join(missing)} input given")
    tables: dict[str, Any] = {}
    for table, columns in spec.inputs.items():
        if table == "samples":
            tables[table] = load_samples(list(inputs[table]), list(sample_datasets))
        else:
            tables[table] = load_table(list(inputs[table]), columns)
    spec.draw(**tables, out=Output(list(outputs), dpi, maximize_epochs), **options)
