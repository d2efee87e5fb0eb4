"""Rule data: the training set p0 and an independent draw of the same law (noise floor)."""

from scorew2.data import make_dataset
from scorew2.io import save_npz
from scorew2.jobs import job

with job(snakemake) as log:
    spec = dict(snakemake.params.spec)
    n = spec.pop("n")
    seed = snakemake.params.seed
    name = snakemake.wildcards.dataset
    train = make_dataset(name, n, seed, **spec)
    fresh = make_dataset(name, n, seed + 1, **spec)
    save_npz(snakemake.output[0], train=train, fresh=fresh)
    log.info("%s: %d points, seed %d (fresh draw: seed %d)", name, n, seed, seed + 1)
