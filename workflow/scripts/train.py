"""Rule train: every regulariser's seeds of one (experiment, data set, T) as one batched model."""

import os

from scorew2.checkpoints import save_checkpoints
from scorew2.io import load_npz
from scorew2.jobs import job
from scorew2.runs import batch_layout
from scorew2.schedule import make_schedule
from scorew2.train import TrainConfig, train

with job(snakemake) as log:
    run, tr = snakemake.params.run, dict(snakemake.params.training)
    data = load_npz(snakemake.input.data, required=("train",))["train"]
    state = snakemake.params.state
    if os.path.exists(state):
        log.info("resuming from %s", state)

    def progress(epoch, losses):
        if epoch % 50 == 0 or epoch == tr["epochs"]:
            log.info("epoch %d: mean loss per model %s", epoch, losses.round(5).tolist())

    regs, seeds = batch_layout(run["regularizers"], run["seeds"])
    result = train(
        data,
        make_schedule(**run["schedule"]),
        seeds,
        regs,
        config=TrainConfig(**tr),
        state_path=state,
        device=snakemake.params.device,
        progress=progress,
    )
    save_checkpoints(result, snakemake.output.checkpoints)
    os.remove(state)  # the checkpoints file is complete; nothing left to resume
