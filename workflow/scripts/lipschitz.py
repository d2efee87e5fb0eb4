"""Rule lipschitz: one-sided Lipschitz estimates L_s(t) of every evaluated checkpoint."""

from scorew2.evaluate import lipschitz_group, load_group
from scorew2.io import save_csv
from scorew2.jobs import group_meta, job

with job(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    ck, train, schedule = load_group(i.checkpoints, i.data, p.run)
    meta = group_meta(snakemake.wildcards)
    df = lipschitz_group(meta, ck, train, schedule, p.grid, p.seed, p.run["prior"], p.paths)
    save_csv(df, snakemake.output.lipschitz)
    log.info("%d rows", len(df))
