"""Rule lipschitz: one-sided Lipschitz estimates L_s(t) of every evaluated checkpoint."""

from scorew2.evaluate import lipschitz_group, load_checkpoints
from scorew2.io import load_npz, save_csv
from scorew2.jobs import job
from scorew2.schedule import make_schedule

with job(snakemake) as log:
    w, run = snakemake.wildcards, snakemake.params.run
    meta = dict(experiment=w.exp, dataset=w.dataset, regularizer=w.reg, T=int(w.T))
    ck = load_checkpoints(snakemake.input.checkpoints, run["checkpoints"])
    train = load_npz(snakemake.input.data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    df = lipschitz_group(meta, ck, train, schedule, snakemake.params.grid, snakemake.params.seed)
    save_csv(df, snakemake.output.lipschitz)
    log.info("%d rows", len(df))
