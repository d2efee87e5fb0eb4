"""The README's result tables, generated from the committed tables (never typed).

The README holds blocks between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
lines; ``render`` rebuilds each from ``results/tables`` (``claims``: claims.csv, ``runs``: the
seed means of runs.csv, ``certify``: the certified L_s's cost and findings, ``fig4``: the T
sweeps' schedules against the poster, ``runtimes``: CPU seconds per experiment and stage,
``theorem3``: both sides of Theorem 3 per perturbation and size; ``dimsweep``: the bound
against the dimension).
``python -m scorew2.generated readme`` rewrites README.md in place;
with ``--check`` it exits 1 when the README differs from what the tables give (a test runs it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = [
    "BLOCKS",
    "STAGES",
    "certify_block",
    "claims_block",
    "dimsweep_block",
    "fig4_block",
    "render",
    "runs_block",
    "runtimes_block",
    "theorem3_block",
]

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
    """One row per claim: statement, evidence, verdict, the leave-one-seed-out check
    (claims.csv, in its order; the headline rows: a claim's variants are in claims.md), and
    how many verdicts that check flips."""
    claims = pd.read_csv(tables / "claims.csv", keep_default_na=False)
    lines = ["| claim | evidence | verdict | one seed left out |", "|---|---|---|---|"]
    for r in claims[claims["variant"] == ""].itertuples():
        statement = r.statement or r.claim
        lines.append(f"| {statement} | {r.evidence} | **{r.verdict}** | {r.seed_check} |")
    judged = claims[claims["verdict"] != "not evaluated"]
    flips = judged["seed_check"].str.startswith("flips")
    heads = (judged["variant"] == "").to_numpy()
    lines += [
        "",
        f"Leaving one of the seeds out changes {int(flips.sum())} of {len(judged)} verdicts "
        f"(headlines and variants; {int(flips[heads].sum())} of {int(heads.sum())} headlines): "
        "those rest on fewer seeds than they need (claims.md, last column).",
    ]
    return "\n".join(lines)


def fig4_block(tables: Path) -> str:
    """Per T-sweep experiment: how far figure 4 lies from the poster's (fig4_schedules.csv):
    the mean |step - poster step| of figure 4a's two crossings per L_s, the root mean square
    of ln(ours / poster) over T of each figure 4b form, and which experiment is closest."""
    fit = pd.read_csv(tables / "fig4_schedules.csv")
    sq = fit["error"].where(fit["figure"] == "4a", fit["error"] ** 2)
    table = sq.groupby([fit["figure"], fit["series"], fit["experiment"]], sort=False).mean()
    table = table.unstack("experiment")
    is_4b = table.index.get_level_values("figure") == "4b"
    table[is_4b] = table[is_4b] ** 0.5
    beta = fit.groupby("experiment")["beta_end"].first()
    head = ["figure 4 against the poster", *(f"{e} (beta_end {beta[e]:g})" for e in table)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    what = {"4a": "4a, mean abs(step - poster), L_s by", "4b": "4b, rms ln(ours / poster),"}
    for (figure, series), row in table.iterrows():
        best = row.idxmin() if row.notna().any() else None
        cells = [f"{v:.3g}" + (" (closest)" if e == best else "") for e, v in row.items()]
        lines.append(f"| {what[figure]} {series} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float, fmt: str) -> str:
    """A number of the results table: "0" for zero, "n/a" where it does not exist (the
    certified intercept in d > 2)."""
    return "n/a" if pd.isna(value) else "0" if value == 0 else fmt.format(value)


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
        cells += [_cell(row[c], fmt) for c, _, fmt in _MEANS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def certify_block(tables: Path) -> str:
    """Per experiment with a certificate: the certified L_s's cost (the CPU time of the
    certify jobs of runtimes.csv, per final model and step) and what it found (runs.csv)."""
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
        if pairs == 0:  # no certificate (the dimension sweep, d > 2)
            continue
        cpu = float(times.loc[times["job"].str.startswith(f"{exp}/"), "cpu_seconds"].sum())
        cells = [exp, str(int(r["n_certified"].sum())), str(pairs), f"{cpu:.0f}"]
        cells += [f"{1e3 * cpu / pairs:.0f}", f"{r['L_gap_max'].max():.3g}"]
        cells.append(str(int(r["n_violations_cert"].sum())))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def theorem3_block(tables: Path) -> str:
    """Theorem 3 per perturbation and size (theorem3.csv): medians over the model pairs of
    both sides, the measured triangle, and the pairs above each right-hand side."""
    t = pd.read_csv(tables / "theorem3.csv")
    head = [
        "experiment", "data set", "perturbation", "size", "pairs", "W2(q0, q0~)", "W2(p0, p0~)",
        "triangle, measured W2", "rhs, estimated L_s", "rhs, certified L_s",
        "pairs above (estimated / certified)",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.itertuples(index=False):
        cells = [r.experiment, r.dataset, r.family, f"{r.delta:g}", str(r.pairs)]
        cells += [f"{v:.3g}" for v in (r.w2_q, r.w2_p, r.rhs_measured, r.rhs, r.rhs_cert)]
        cells.append(f"{r.n_above} / {r.n_above_cert}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dimsweep_block(tables: Path) -> str:
    """The dimension sweep per data set and d (dimsweep.csv): medians over the seeds of the
    final models' W2 beside its floors, J_DSM beside its floor, the intercept, the bound
    beside the triangle bound, and the models the bound informs."""
    t = pd.read_csv(tables / "dimsweep.csv")
    head = [
        "data set", "d", "runs", "W2", "W2 floor", "Gelbrich (moments)", "Gelbrich floor",
        "J_DSM", "DSM floor", "intercept", "bound", "triangle bound", "ln bound - ln W2",
        "informative",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.itertuples(index=False):
        cells = [r.base, str(r.d), str(r.runs)]
        cells += [f"{v:.3g}" for v in (r.w2, r.w2_floor, r.w2_gelbrich, r.w2_gelbrich_floor)]
        cells += [f"{v:.3g}" for v in (r.jdsm, r.dsm_floor, r.log_intercept, r.bound)]
        cells += [f"{r.w2_trivial:.3g}", f"{r.tightness:.2f}", f"{r.n_informative} of {r.runs}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The benchmarked rules of runtimes.csv, in pipeline order.
STAGES = ("train", "sample", "w2", "losses", "lipschitz", "lipschitz_cloud", "certify")


def runtimes_block(tables: Path) -> str:
    """CPU seconds of the benchmarked jobs (runtimes.csv) per experiment and stage, their
    total, the sum of the jobs' wall times, and the largest job's peak memory; a last row sums
    every experiment."""
    times = pd.read_csv(tables / "runtimes.csv")
    times["experiment"] = times["job"].str.split("/").str[0]
    table = times.pivot_table("cpu_seconds", "experiment", "rule", "sum", sort=False)
    table = table.reindex(columns=[s for s in STAGES if s in table.columns])
    table.loc["all experiments"] = table.sum()
    per_exp = times.groupby("experiment", sort=False)
    wall, memory = per_exp["seconds"].sum(), per_exp["max_rss_mb"].max()
    wall["all experiments"], memory["all experiments"] = wall.sum(), memory.max()
    head = ["experiment", *table.columns, "all jobs", "jobs' wall s", "largest job (MB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for exp, row in table.iterrows():
        cells = [f"{v:,.0f}" for v in (*row.fillna(0), row.sum(), wall[exp], memory[exp])]
        lines.append(f"| {exp} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[Path], str]] = {
    "claims": claims_block,
    "runs": runs_block,
    "certify": certify_block,
    "fig4": fig4_block,
    "runtimes": runtimes_block,
    "theorem3": theorem3_block,
    "dimsweep": dimsweep_block,
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
