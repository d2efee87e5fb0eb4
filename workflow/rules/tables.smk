# Tables the paper lacks: one row per run, the paper's claims with computed verdicts, and the
# run time of every heavy job.


rule tables:
    input:
        bounds=group_files("bound.csv"),
        lipschitz=lipschitz_files(),
        certified=group_files("certified.csv", where=in_plane),
        robustness=robustness_files(),
        moments=group_files("moments.csv", where=lambda g: not in_plane(g)),
    output:
        runs=report(f"{R}/tables/runs.csv", category="Tables"),
        claims=report(f"{R}/tables/claims.md", category="Tables"),
        claims_csv=report(f"{R}/tables/claims.csv", category="Tables"),
        schedules=report(f"{R}/tables/fig4_schedules.csv", category="Tables"),
        theorem3=report(f"{R}/tables/theorem3.csv", category="Tables"),
        dimsweep=report(f"{R}/tables/dimsweep.csv", category="Tables"),
        provenance=report(f"{R}/tables/provenance.json", category="Provenance"),
    log:
        f"{R}/logs/tables/tables.log",
    conda:
        CONDA_ENV
    params:
        code=get_code("tables"),
        config=config,
        kinds=KINDS,
        sweep_schedules=get_sweep_schedules(),
        maximize_epochs=config["training"]["maximize_epochs"],
    script:
        "../scripts/tables.py"


rule runtimes:
    input:
        train_files() + group_files("samples.npz") + group_files("bound.csv"),
    output:
        f"{R}/tables/runtimes.csv",
    log:
        f"{R}/logs/tables/runtimes.log",
    conda:
        CONDA_ENV
    params:
        code=get_code("runtimes"),
        benchmarks=f"{R}/benchmarks",
        logs=f"{R}/logs",
    script:
        "../scripts/runtimes.py"
