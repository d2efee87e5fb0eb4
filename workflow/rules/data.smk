# Data generation: the training set p0 of each data set and an independent draw of the same
# law (for the W2 sampling noise floor), and the perturbed sets p0~ of the robustness
# experiments (both arrays perturbed alike). Highest priority: they unlock training.


rule data:
    output:
        f"{R}/data/{{dataset}}.npz",
    log:
        f"{R}/logs/data/{{dataset}}.log",
    wildcard_constraints:
        dataset="[a-z_]+",
    priority: 60
    conda:
        CONDA_ENV
    params:
        code=get_code("make_data"),
        spec=lambda w: dict(config["datasets"][w.dataset]),
        seed=config["data_seed"],
    script:
        "../scripts/make_data.py"


rule perturb:
    input:
        data=f"{R}/data/{{base}}.npz",
    output:
        data=f"{R}/data/{{base}}-{{family}}{{size}}.npz",
    log:
        f"{R}/logs/data/{{base}}-{{family}}{{size}}.log",
    wildcard_constraints:
        base="[a-z_]+",
        family="shift|mass",
        size="[0-9.e+-]+",
    priority: 60
    conda:
        CONDA_ENV
    params:
        code=get_code("perturb_data"),
        perturbation=get_perturbation,
    script:
        "../scripts/perturb_data.py"
