# Reproduction of Kwon, Fan & Lee, "Score-based Generative Modeling Secretly Minimizes the
# Wasserstein Distance" (NeurIPS 2022). `snakemake --cores 2` runs everything config.yaml asks.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        all_targets(),


onerror:
    # a cluster job killed at its time or memory limit: say which, and which profile key
    from scorew2.cluster import explain_failure

    explain_failure(log)
