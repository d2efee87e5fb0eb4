# Evaluation of every checkpoint of a run group, one rule per quantity so that a setting
# reruns only what depends on it (w2_points: sample, w2, bound; lipschitz_grid: lipschitz,
# bound; never training). Priorities: on 2 cores, start the longest ready jobs first (w2, then
# lipschitz, then losses; sample because it unlocks w2), so no long job is left for the end.


rule sample:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        checkpoints=get_checkpoints,
    output:
        samples=f"{GROUP}/samples.npz",
    log:
        f"{R}/logs/sample/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/sample/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 40
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("sample"),
        run=get_group_run,
        n_points=config["evaluation"]["w2_points"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/sample.py"


rule w2:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        samples=f"{GROUP}/samples.npz",
    output:
        w2=f"{GROUP}/w2.csv",
    log:
        f"{R}/logs/w2/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/w2/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 40
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("w2"),
        n_points=config["evaluation"]["w2_points"],
    script:
        "../scripts/w2.py"


rule losses:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        checkpoints=get_checkpoints,
    output:
        losses=f"{GROUP}/losses.csv",
    log:
        f"{R}/logs/losses/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/losses/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 20
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("losses"),
        run=get_group_run,
        draws=config["evaluation"]["loss_draws"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/losses.py"


rule lipschitz:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        checkpoints=get_checkpoints,
    output:
        lipschitz=f"{GROUP}/lipschitz.csv",
    log:
        f"{R}/logs/lipschitz/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/lipschitz/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 30
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("lipschitz"),
        run=get_group_run,
        grid=config["evaluation"]["lipschitz_grid"],
        paths=config["evaluation"]["lipschitz_paths"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/lipschitz.py"


rule certify:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        checkpoints=get_checkpoints,
    output:
        certified=f"{GROUP}/certified.csv",
    log:
        f"{R}/logs/certify/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/certify/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 30
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("certify"),
        run=get_final_run,
        paths=config["evaluation"]["lipschitz_paths"],
        k_sigma=config["evaluation"]["certify_k_sigma"],
        tol=config["evaluation"]["certify_tol"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/certify.py"


rule lipschitz_cloud:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        checkpoints=get_checkpoints,
    output:
        lipschitz=f"{GROUP}/lipschitz_cloud.csv",
    log:
        f"{R}/logs/lipschitz_cloud/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/lipschitz_cloud/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    priority: 30
    conda:
        CONDA_ENV
    threads: 1
    params:
        code=get_code("lipschitz_cloud"),
        run=get_group_run,
        points=config["evaluation"]["lipschitz_points"],
        paths=config["evaluation"]["lipschitz_paths"],
        law=get_law,
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/lipschitz_cloud.py"


rule moments:
    input:
        data=f"{R}/data/{{dataset}}.npz",
        samples=f"{GROUP}/samples.npz",
    output:
        moments=f"{GROUP}/moments.csv",
    log:
        f"{R}/logs/moments/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    conda:
        CONDA_ENV
    params:
        code=get_code("moments"),
        law=get_law,
    script:
        "../scripts/moments.py"


rule bound:
    input:
        unpack(get_bound_inputs),
    output:
        bound=f"{GROUP}/bound.csv",
    log:
        f"{R}/logs/bound/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    conda:
        CONDA_ENV
    params:
        code=get_code("bound"),
        schedule=get_schedule,
    script:
        "../scripts/bound.py"


rule robustness:
    input:
        unpack(get_robustness_inputs),
    output:
        robustness=f"{GROUP}/robustness.csv",
    log:
        f"{R}/logs/robustness/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.log",
    benchmark:
        f"{R}/benchmarks/robustness/{{exp}}/{{dataset}}/{{reg}}/T{{T}}.tsv"
    conda:
        CONDA_ENV
    params:
        code=get_code("robustness"),
        perturbed=get_perturbed,
    script:
        "../scripts/robustness.py"
