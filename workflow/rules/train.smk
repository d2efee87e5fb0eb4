# Training: one job per (experiment, data set, T) trains the seeds of every regulariser as one
# batched model (scorew2.train; each model exactly as trained alone); its checkpoints file holds
# every model's weights on the checkpoint schedule, and the evaluation of a run group reads its
# regulariser's models from it. An interrupted job resumes from its state file (train_state.pt,
# deliberately not a declared output so it survives). Training jobs are the longest: they run
# first (priority), so that no core idles at the end waiting for a late one.


rule train:
    input:
        data=f"{R}/data/{{dataset}}.npz",
    output:
        checkpoints=TRAINED,
    log:
        f"{R}/logs/train/{{exp}}/{{dataset}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{exp}}/{{dataset}}/T{{T}}.tsv"
    priority: 50
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        code=get_code("train"),
        run=get_train_batch,
        training=get_train_settings,
        device=config["device"],
        state=get_train_state,
    script:
        "../scripts/train.py"
