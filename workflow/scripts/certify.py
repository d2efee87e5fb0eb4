"""Rule certify: certified L_s(t) of the final models of a run group over the stated region."""

from scorew2.evaluate import job_group
from scorew2.evaluate.certify import certify_group
from scorew2.io import save_csv
from scorew2.jobs import job

with job(snakemake) as log:
    p = snakemake.params
    group = job_group(snakemake)
    df = certify_group(group, p.paths, p.k_sigma, p.tol)
    save_csv(df, snakemake.output.certified)
    log.info(
        "%d (model, step) certified, %d boxes, %d not converged",
        len(df),
        int(df["n_boxes"].sum()),
        int((~df["converged"]).sum()),
    )
