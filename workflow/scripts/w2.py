"""Rule w2: exact W2(p0, q0) of every evaluated checkpoint, and the sampling noise floor."""

from scorew2.io import load_npz, save_csv
from scorew2.jobs import job
from scorew2.metrics import w2_group
from scorew2.runs import GroupId

with job(snakemake) as log:
    samples = load_npz(snakemake.input.samples, required=("samples", "seeds", "epochs", "ref"))
    fresh = load_npz(snakemake.input.data, required=("fresh",))["fresh"]
    df = w2_group(GroupId.from_wildcards(snakemake.wildcards), samples, fresh)
    save_csv(df, snakemake.output.w2)
    log.info("%d W2 values, noise floor %.4g", len(df), df["w2_floor"].iloc[0])
