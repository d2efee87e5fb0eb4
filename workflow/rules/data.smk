# Data generation: the training set p0 of each data set and an independent draw of the same
# law (for the W2 sampling noise floor). Highest priority: they unlock training.


rule data:
    output:
        f"{R}/data/{{dataset}}.npz",
    log:
        f"{R}/logs/data/{{dataset}}.log",
    priority: 60
    conda:
        CONDA_ENV
    params:
        code=get_code("make_data"),
        spec=lambda w: dict(config["datasets"][w.dataset]),
        seed=config["data_seed"],
    script:
        "../scripts/make_data.py"
