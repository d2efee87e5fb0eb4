# Data generation: the training set p0 of each data set and an independent draw of the same
# law (for the W2 sampling noise floor). Highest priority: they unlock training.


rule data:
    output:
        f"{R}/data/{{dataset}}.npz",
    params:
        spec=lambda w: dict(config["datasets"][w.dataset]),
        seed=config["data_seed"],
    priority: 60
    log:
        f"{R}/logs/data/{{dataset}}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/make_data.py"
