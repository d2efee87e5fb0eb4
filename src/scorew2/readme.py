"""The README's result tables, generated from the committed tables (never typed).

The README holds blocks between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
lines; ``render`` rebuilds each from ``results/tables`` (``claims``: claims.csv, ``runs``: the
seed means of runs.csv, ``certify``: the certified L_s's cost and findings, ``fig4``: the T
sweeps' schedules against the poster).
``python -m scorew2.generated readme`` rewrites README.md in place;
with ``--check`` it exits 1 when the README differs from what the tables give (a test runs it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BLOCKS", "certify_block", "claims_block", "fig4_block", "render", "runs_block"]

_MEANS = [
    ("final_jdsm", "J_DSM", "{:.3f}"),
    ("final_jsm", "J_SM", "{:.3f}"),
    ("dsm_floor", "DSM floor", "{:.3f}"),
    ("final_w2", "W2(p0, q0)", "{:.3f}"),
    ("w2_floor", "W2 noise floor", "{:.3f}"),
    ("intercept_paper", "intercept (authors' L_s)", "{:.2f}"),
    ("intercept_final", "intercept (ours)", "{:.2f}"),
    ("intercept_cert", "intercept (certified L_s)", "{:.2f}"),
    ("final_offset", "offset", "{:.4g}"),
]


def claims_block(tables: Path) -> str:
    """One row per claim: statement, evidence, verdict (claims.csv, in its order; the headline
    rows: a claim's variants are in claims.md)."""
    claims = pd.read_csv(tables / "claims.csv", keep_default_na=False)
    lines = ["| claim | evidence | verdict | one seed left out |", "|---|---|---|---|"]
    for r in claims[claims["variant"] == ""].itertuples():
        statement = r.statement or r.claim
        lines.append(f"| {statement} | {r.evidence} | **{r.verdict}** | {r.seed_check} |")
    return "\n".join(lines)


def fig4_block(tables: Path) -> str:
    """Per T-sweep experiment: how far figure 4 lies from the poster's (fig4_schedules.csv):
    the mean |step - poster step| of the figure 4a crossings, the root mean square of
    ln(ours / poster) of each figure 4b form, and which experiment is closest on each."""
    fit = pd.read_csv(tables / "fig4_schedules.csv")
    fit["what"] = np.where(
        fit["figure"] == "4a",
        "4a: mean |step - poster|, L_s by " + fit["quantity"].str.split("L_s by ").str[-1],
        "4b: rms ln(ours / poster), " + fit["quantity"].str.split(" at T").str[0],
    )
    err = fit.groupby(["what", "experiment"], sort=False)["error"]
    table = err.apply(lambda e: e.mean() if "4a" in e.name[0] else np.sqrt((e**2).mean()))
    table = table.unstack("experiment")
    exps = list(table.columns)
    beta = fit.groupby("experiment")["beta_end"].first()
    head = ["figure 4 against the poster", *(f"{e} (beta_end {beta[e]:g})" for e in exps)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for what, row in table.iterrows():
        best = row.idxmin() if row.notna().any() else "none"
        cells = [f"{v:.3g}" + (" (closest)" if e == best else "") for e, v in row.items()]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_block(tables: Path) -> str:
    """The mean over seeds of each run group's final model (runs.csv)."""
    runs = pd.read_csv(tables / "runs.csv")
    keys = ["experiment", "dataset", "regularizer", "T"]
    means = runs.groupby(keys, sort=False)[[c for c, _, _ in _MEANS]].mean().reset_index()
    head = ["experiment", "data set", "regulariser", "T", *(name for _, name, _ in _MEANS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in means.itertuples(index=False):
        row = dict(zip(means.columns, r, strict=True))
        cells = [str(row[k]) for k in keys]
        cells += [fmt.format(row[c]) if row[c] != 0 else "0" for c, _, fmt in _MEANS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def certify_block(tables: Path) -> str:
    """Per experiment: the certified L_s's cost (the certify jobs of runtimes.csv, per final
    model and step) and what it found (runs.csv)."""
    runs = pd.read_csv(tables / "runs.csv")
    times = pd.read_csv(tables / "runtimes.csv")
    times = times[times["rule"] == "certify"]
    head = [
        "experiment", "final models", "(model, step) pairs", "CPU-s (certify jobs)",
        "ms per (model, step)", "largest certified - estimated L_s",
        "final models above the certified bound",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for exp, r in runs.groupby("experiment", sort=False):
        pairs = int((r["T"] * r["n_certified"]).sum())
        cpu = float(times.loc[times["job"].str.startswith(f"{exp}/"), "seconds"].sum())
        cells = [exp, str(int(r["n_certified"].sum())), str(pairs), f"{cpu:.0f}"]
        cells += [f"{1e3 * cpu / pairs:.0f}", f"{r['L_gap_max'].max():.3g}"]
        cells.append(str(int(r["n_violations_cert"].sum())))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "claims": claims_block,
    "runs": runs_block,
    "certify": certify_block,
    "fig4": fig4_block,
}


def render(readme: str, tables: Path) -> str:
    """``readme`` with every generated block rebuilt from ``tables``.

    Raises ValueError for a block name that ``BLOCKS`` does not know.
    """

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"README: unknown generated block {name!r}; known: {list(BLOCKS)}")
        return f"<!-- generated:{name} -->\n{BLOCKS[name](tables)}\n<!-- /generated:{name} -->"

    pattern = re.compile(r"<!-- generated:(\w+) -->\n.*?<!-- /generated:\1 -->", re.S)
    return pattern.sub(fill, readme)
