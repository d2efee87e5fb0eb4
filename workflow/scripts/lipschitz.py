"""Rule lipschitz: one-sided Lipschitz estimates L_s(t) of every evaluated checkpoint."""

from scorew2.evaluate import job_group
from scorew2.evaluate.lipschitz import lipschitz_group
from scorew2.io import save_csv
from scorew2.jobs import job

with job(snakemake) as log:
    p = snakemake.params
    group = job_group(snakemake)
    df = lipschitz_group(group, p.grid, p.paths)
    save_csv(df, snakemake.output.lipschitz)
    log.info("%d rows", len(df))
