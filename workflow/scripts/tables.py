"""Rule tables: runs.csv (one row per run), claims.md/.csv (verdicts), fig4_schedules.csv
(the T-sweep schedules against the poster), theorem3.csv (Theorem 3 per perturbation and
size), dimsweep.csv (the dimension sweep per data set and d), provenance.json."""

import pandas as pd

from scorew2.dimsweep import dimsweep_runs, dimsweep_summary
from scorew2.io import load_csv, save_csv, save_json, save_text
from scorew2.jobs import job
from scorew2.provenance import provenance
from scorew2.tables import (
    ClaimSettings,
    claims_markdown,
    claims_table,
    fig4_schedules,
    runs_table,
    theorem3_summary,
)


def _tables(files, required):
    return pd.concat([load_csv(f, required=required) for f in files], ignore_index=True)


with job(snakemake) as log:
    p = snakemake.params
    bounds = _tables(snakemake.input.bounds, ("seed", "epoch", "w2", "jdsm", "log_bound"))
    lips = _tables(snakemake.input.lipschitz, ("seed", "epoch", "step", "L_s"))
    cert = _tables(snakemake.input.certified, ("seed", "epoch", "step", "L_cert_upper"))
    robust = (
        _tables(snakemake.input.robustness, ("seed", "seed_b", "w2_q", "rhs", "holds"))
        if snakemake.input.robustness
        else None
    )
    moments = (
        _tables(snakemake.input.moments, ("seed", "epoch", "w2_gelbrich", "w2_trivial"))
        if snakemake.input.moments
        else None
    )
    prov = provenance(p.config)
    ev = p.config["evaluation"]
    settings = ClaimSettings(p.maximize_epochs, ev["certify_k_sigma"], ev["w2_points"], ev["seed"])
    claims = claims_table(bounds, lips, p.kinds, settings, cert, robust, moments)
    dims = pd.DataFrame() if moments is None else dimsweep_runs(bounds, lips, moments)
    save_csv(runs_table(bounds), snakemake.output.runs)
    save_csv(claims, snakemake.output.claims_csv)
    save_text(claims_markdown(claims, prov), snakemake.output.claims)
    save_csv(fig4_schedules(bounds, lips, p.sweep_schedules), snakemake.output.schedules)
    save_csv(theorem3_summary(robust), snakemake.output.theorem3)
    save_csv(dimsweep_summary(dims), snakemake.output.dimsweep)
    save_json(prov, snakemake.output.provenance)
    for r in claims.itertuples():
        log.info("%s %s: %s (%s; %s)", r.claim, r.variant, r.verdict, r.evidence, r.seed_check)
