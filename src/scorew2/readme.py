"""The README's result tables, generated from the committed tables (never typed).

The README holds blocks between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
lines; ``render`` rebuilds each from ``results/tables`` (``claims``: claims.csv, ``runs``: the
seed means of runs.csv). ``python -m scorew2.generated readme`` rewrites README.md in place;
with ``--check`` it exits 1 when the README differs from what the tables give (a test runs it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["BLOCKS", "claims_block", "render", "runs_block"]

_MEANS = [
    ("final_jdsm", "J_DSM", "{:.3f}"),
    ("final_jsm", "J_SM", "{:.3f}"),
    ("dsm_floor", "DSM floor", "{:.3f}"),
    ("final_w2", "W2(p0, q0)", "{:.3f}"),
    ("w2_floor", "W2 noise floor", "{:.3f}"),
    ("intercept_paper", "intercept (authors' L_s)", "{:.2f}"),
    ("intercept_final", "intercept (ours)", "{:.2f}"),
    ("final_offset", "offset", "{:.4g}"),
]


def claims_block(tables: Path) -> str:
    """One row per claim: statement, evidence, verdict (claims.csv, in its order)."""
    claims = pd.read_csv(tables / "claims.csv", keep_default_na=False)
    lines = ["| claim | evidence | verdict |", "|---|---|---|"]
    for r in claims.itertuples():
        statement = r.statement or r.claim
        lines.append(f"| {statement} | {r.evidence} | **{r.verdict}** |")
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


BLOCKS: dict[str, Callable[[Path], str]] = {"claims": claims_block, "runs": runs_block}


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
