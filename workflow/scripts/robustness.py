"""Rule robustness: both sides of Theorem 3 for a data set against each perturbed set."""

from scorew2.io import load_csv, load_npz, save_csv
from scorew2.jobs import job
from scorew2.robustness import Run, theorem3_table
from scorew2.runs import GroupId

NEEDED = ("seed", "epoch", "w2", "log_bound", "log_bound_cert")

with job(snakemake) as log:
    runs = [
        Run.final(
            load_npz(s, required=("samples", "seeds", "epochs", "ref")),
            load_csv(b, required=NEEDED),
        )
        for s, b in zip(snakemake.input.samples, snakemake.input.bounds, strict=True)
    ]
    perturbed = [
        (fam, size, run)
        for (_, fam, size), run in zip(snakemake.params.perturbed, runs[1:], strict=True)
    ]
    df = theorem3_table(GroupId.from_wildcards(snakemake.wildcards), runs[0], perturbed)
    save_csv(df, snakemake.output.robustness)
    log.info("%d pairs, %d above the bound", len(df), int((~df["holds"]).sum()))
