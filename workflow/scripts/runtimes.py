"""Rule runtimes: run time and peak memory of every benchmarked job."""

from scorew2.io import save_csv
from scorew2.jobs import job
from scorew2.tables import runtimes_table

with job(snakemake) as log:
    df = runtimes_table(snakemake.params.benchmarks, snakemake.params.logs)
    save_csv(df, snakemake.output[0])
    log.info("%d jobs, %.1f s in all", len(df), df["seconds"].sum())
