"""Rule losses: J_DSM and exact J_SM of every evaluated checkpoint, and the DSM floor."""

from scorew2.evaluate import job_group
from scorew2.evaluate.losses import loss_group
from scorew2.io import save_csv
from scorew2.jobs import job

with job(snakemake) as log:
    p = snakemake.params
    group = job_group(snakemake)
    df = loss_group(group, p.draws)
    save_csv(df, snakemake.output.losses)
    log.info("%d checkpoints, DSM floor %.6g", len(df), df["dsm_floor"].iloc[0])
