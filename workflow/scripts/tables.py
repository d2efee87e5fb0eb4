"""Rule tables: runs.csv (one row per run), claims.md/.csv (verdicts), provenance.json."""

import pandas as pd

from scorew2.io import load_csv, save_csv, save_json, save_text
from scorew2.jobs import job
from scorew2.provenance import provenance
from scorew2.tables import claims_markdown, claims_table, runs_table

with job(snakemake) as log:
    p = snakemake.params
    bounds = pd.concat(
        [
            load_csv(f, required=("seed", "epoch", "w2", "jdsm", "log_bound"))
            for f in snakemake.input.bounds
        ],
        ignore_index=True,
    )
    lips = pd.concat(
        [load_csv(f, required=("seed", "epoch", "step", "L_s")) for f in snakemake.input.lipschitz],
        ignore_index=True,
    )
    prov = provenance(snakemake.params.config)
    runs = runs_table(bounds)
    ev = p.config["evaluation"]
    claims = claims_table(
        bounds, lips, p.maximize_epochs, p.kinds, ev["certify_k_sigma"], ev["seed"]
    )
    save_csv(runs, snakemake.output.runs)
    save_csv(claims, snakemake.output.claims_csv)
    save_text(claims_markdown(claims, prov), snakemake.output.claims)
    save_json(prov, snakemake.output.provenance)
    for r in claims.itertuples():
        log.info("%s %s: %s (%s)", r.claim, r.variant, r.verdict, r.evidence)
