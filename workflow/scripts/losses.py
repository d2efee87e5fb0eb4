"""Rule losses: J_DSM and exact J_SM of every evaluated checkpoint, and the DSM floor."""

from scorew2.evaluate import load_checkpoints, loss_group
from scorew2.io import load_npz, save_csv
from scorew2.jobs import job
from scorew2.schedule import make_schedule

with job(snakemake) as log:
    w, run = snakemake.wildcards, snakemake.params.run
    meta = dict(experiment=w.exp, dataset=w.dataset, regularizer=w.reg, T=int(w.T))
    ck = load_checkpoints(snakemake.input.checkpoints, run["checkpoints"])
    train = load_npz(snakemake.input.data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    df = loss_group(meta, ck, train, schedule, snakemake.params.draws, snakemake.params.seed)
    save_csv(df, snakemake.output.losses)
    log.info("%d checkpoints, DSM floor %.6g", len(df), df["dsm_floor"].iloc[0])
