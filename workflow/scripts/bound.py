"""Rule bound: per checkpoint, the bound of Corollary 1 from its own L_s, and violations."""

from scorew2.bound_table import bound_group
from scorew2.io import load_csv, save_csv
from scorew2.jobs import job
from scorew2.schedule import make_schedule

with job(snakemake) as log:
    w2s = load_csv(snakemake.input.w2, required=("seed", "epoch", "w2", "w2_T"))
    losses = load_csv(snakemake.input.losses, required=("seed", "epoch", "jdsm", "jsm"))
    lips = load_csv(snakemake.input.lipschitz, required=("seed", "epoch", "step", "L_s"))
    cert = (  # no certificate in d > 2 (the dimension sweep)
        load_csv(snakemake.input.certified, required=("seed", "epoch", "step", "L_cert_upper"))
        if "certified" in snakemake.input.keys()
        else None
    )
    df = bound_group(w2s, losses, lips, make_schedule(**snakemake.params.schedule), cert)
    save_csv(df, snakemake.output.bound)
    log.info(
        "%d checkpoints, %d above their bound; %d certified, %d above their certified bound",
        len(df),
        int(df["violation"].sum()),
        int(df["certified"].sum()),
        int(df["violation_cert"].sum()),
    )
