"""The T sweep: figure 4a (L_s(t) of the final model) and 4b (the bound's terms against T)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from scorew2.plots.common import Output, band, figure, seed_note
from scorew2.runs import final_rows

__all__ = ["fig4a", "fig4b"]


def _closest_T(values: Any, target: int) -> int:
    return int(min(sorted(set(int(v) for v in values)), key=lambda t: (abs(t - target), -t)))


def fig4a(
    lipschitz: pd.DataFrame,
    out: Output,
    target_T: int = 100,
) -> None:
    """Figure 4a: one-sided Lipschitz constant L_s(t) of the final model against step t for the
    run with T = ``target_T`` (or the closest T present): grid and authors' estimators, exact."""
    df = lipschitz
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
    d = final_rows(d)
    epochs = ", ".join(str(int(e)) for e in sorted(d["epoch"].unique()))
    with figure(7.6, 5.0, out) as fig:
        ax = fig.add_subplot()
        errorbar = band(d)
        sns.lineplot(
            d,
            x="step",
            y="L_s",
            errorbar=errorbar,
            color="C0",
            ax=ax,
            label="model, our estimator (data-region grid and its own sampler paths)",
        )
        sns.lineplot(
            d,
            x="step",
            y="L_paper",
            errorbar=errorbar,
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
            f"T = {T}, {group['dataset']}\n{seed_note(d)}",
            fontsize="medium",
        )


def fig4b(
    bounds: pd.DataFrame,
    out: Output,
) -> None:
    """Figure 4b: the bound's offset I(T) W2(p_T, q_T) against T, with the final W2(p0, q0),
    Corollary 2's offset exp(sum b_i L_i) W2(p0, N(0, I)) and the whole bound."""
    df = bounds
    fin = final_rows(df).copy()
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
    with figure(7.6, 5.0, out) as fig:
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
            errorbar=band(fin),
            ax=ax,
        )
        ax.set_yscale("log")
        ax.set_xticks(Ts)
        ax.set_xlabel("number of steps $T$")
        ax.set_ylabel("value (log scale)")
        ax.legend(fontsize="small", title=None)
        ax.set_title(
            f"Figure 4b: bound terms against $T$ (final models, prior $N(0, I)$, "
            f"{', '.join(sorted(fin['dataset'].unique()))})\n{seed_note(fin)}",
            fontsize="medium",
        )
