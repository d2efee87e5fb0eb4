# Training: the seeds of one run group train together as one batched model (scorew2.train);
# checkpoints hold every model's weights on the checkpoint schedule. An interrupted job resumes
# from its state file (train_state.pt, deliberately not a declared output so it survives).


rule train:
    input:
        data=f"{R}/data/{{dataset}}.npz",
    output:
        checkpoints=f"{R}/runs/{{exp}}/{{dataset}}/{{reg}}/T{{T}}/checkpoints.pt",
    params:
        run=run_params,
        training=training_params,
        device=config["device"],
        state=lambda w: f"{group_dir(w)}/train_state.pt",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        f"{R}/logs/train/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/train.py"
