"""Rule sample: q0 samples of every evaluated checkpoint of a run group."""

from scorew2.evaluate import load_group, sample_group
from scorew2.io import save_npz
from scorew2.jobs import job

with job(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    ck, train, schedule = load_group(i.checkpoints, i.data, p.run)
    out = sample_group(ck, train, schedule, p.run["prior"], p.n_points, p.seed)
    save_npz(snakemake.output.samples, **out)
    log.info("%d models x %d points sampled", *out["samples"].shape[:2])
