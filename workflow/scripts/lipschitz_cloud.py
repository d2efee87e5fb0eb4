"""Rule lipschitz_cloud: L_s(t) of every evaluated checkpoint at point clouds (any d)."""

from scorew2.evaluate import job_group
from scorew2.evaluate.cloud import cloud_lipschitz_group
from scorew2.io import save_csv
from scorew2.jobs import job

with job(snakemake) as log:
    p = snakemake.params
    group = job_group(snakemake)
    df = cloud_lipschitz_group(group, p.points, p.paths, p.law)
    save_csv(df, snakemake.output.lipschitz)
    log.info("%d rows, d = %d", len(df), group.train.shape[1])
