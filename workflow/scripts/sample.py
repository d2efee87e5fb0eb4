"""Rule sample: q0 samples of every evaluated checkpoint of a run group."""

from scorew2.evaluate import job_group
from scorew2.evaluate.samples import sample_group
from scorew2.io import save_npz
from scorew2.jobs import job

with job(snakemake) as log:
    p = snakemake.params
    group = job_group(snakemake)
    out = sample_group(group, p.n_points)
    save_npz(snakemake.output.samples, **out)
    log.info("%d models x %d points sampled", *out["samples"].shape[:2])
