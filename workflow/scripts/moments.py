"""Rule moments: W2(p0, q0) of every evaluated checkpoint bracketed by moments (any d)."""

from scorew2.highdim import parse_dim
from scorew2.io import load_npz, save_csv
from scorew2.jobs import job
from scorew2.metrics import moments_group
from scorew2.moments import law_moments
from scorew2.runs import GroupId

with job(snakemake) as log:
    samples = load_npz(snakemake.input.samples, required=("samples", "seeds", "epochs"))
    fresh = load_npz(snakemake.input.data, required=("fresh",))["fresh"]
    gid = GroupId.from_wildcards(snakemake.wildcards)
    base, dim = parse_dim(gid.dataset)
    law = law_moments(base, dim, **snakemake.params.law)
    df = moments_group(gid, samples, fresh, law)
    save_csv(df, snakemake.output.moments)
    log.info("%d models; Gelbrich floor %.4g", len(df), df["w2_gelbrich_floor"].iloc[0])
