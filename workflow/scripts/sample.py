"""Rule sample: q0 samples of every evaluated checkpoint of a run group."""

from scorew2.evaluate import load_checkpoints, sample_group
from scorew2.io import load_npz, save_npz
from scorew2.jobs import job
from scorew2.schedule import make_schedule

with job(snakemake) as log:
    run = snakemake.params.run
    ck = load_checkpoints(snakemake.input.checkpoints, run["checkpoints"])
    train = load_npz(snakemake.input.data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    out = sample_group(
        ck, train, schedule, run["prior"], snakemake.params.n_points, snakemake.params.seed
    )
    save_npz(snakemake.output.samples, **out)
    log.info("%d models x %d points sampled", *out["samples"].shape[:2])
