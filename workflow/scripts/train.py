"""Rule train: the seeds of one run group trained together as one batched model."""

import os

from scorew2.io import load_npz, save_torch
from scorew2.jobs import job
from scorew2.schedule import make_schedule
from scorew2.train import TrainConfig, train

with job(snakemake) as log:
    run, tr = snakemake.params.run, dict(snakemake.params.training)
    data = load_npz(snakemake.input.data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    result = train(
        data,
        schedule,
        run["regularizer"],
        run["seeds"],
        TrainConfig(**tr),
        state_path=snakemake.params.state,
        device=snakemake.params.device,
        log=log.info,
    )
    save_torch(
        {
            "epochs": result.epochs,
            "states": result.states,
            "seeds": run["seeds"],
            "regularizer": run["regularizer"],
            "n_steps": schedule.T,
            "hidden": tr["hidden"],
            "loss_history": result.loss_history,
        },
        snakemake.output.checkpoints,
    )
    os.remove(snakemake.params.state)  # the checkpoints file is complete: no resume needed
