# Data generation: the training set p0 of each data set and an independent draw of the same
# law (for the W2 sampling noise floor), the perturbed sets p0~ of the robustness
# experiments (both arrays perturbed alike), and the sets in d dimensions of the dimension
# sweep. Highest priority: they unlock training.


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


rule embed:
    output:
        data=f"{R}/data/{{base}}-d{{dim}}.npz",
    log:
        f"{R}/logs/data/{{base}}-d{{dim}}.log",
    wildcard_constraints:
        base="[a-z_]+",
        dim="[0-9]+",
    priority: 60
    conda:
        CONDA_ENV
    params:
        code=get_code("embed_data"),
        spec=lambda w: dict(config["datasets"][w.base]),
        dim=lambda w: int(w.dim),
        seed=config["data_seed"],
    script:
        "../scripts/embed_data.py"
