"""Rule perturb: a perturbed training set p0~ and its fresh draw (scorew2.perturb)."""

from scorew2.io import load_npz, save_npz
from scorew2.jobs import job
from scorew2.perturb import perturb

with job(snakemake) as log:
    p = dict(snakemake.params.perturbation)
    base = load_npz(snakemake.input.data, required=("train", "fresh"))
    out = {k: perturb(base[k], p["family"], p["size"], p["center"]) for k in ("train", "fresh")}
    save_npz(snakemake.output.data, **out)
    log.info(
        "%s of size %g (centre %g): %d points",
        p["family"],
        p["size"],
        p["center"],
        len(out["train"]),
    )
