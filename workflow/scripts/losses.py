"""Rule losses: J_DSM and exact J_SM of every evaluated checkpoint, and the DSM floor."""

from scorew2.evaluate import load_group, loss_group
from scorew2.io import save_csv
from scorew2.jobs import group_meta, job

with job(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    ck, train, schedule = load_group(i.checkpoints, i.data, p.run)
    df = loss_group(group_meta(snakemake.wildcards), ck, train, schedule, p.draws, p.seed)
    save_csv(df, snakemake.output.losses)
    log.info("%d checkpoints, DSM floor %.6g", len(df), df["dsm_floor"].iloc[0])
