"""Rule embed: a training set in d dimensions and its fresh draw (scorew2.highdim)."""

from scorew2.highdim import make_highdim
from scorew2.io import save_npz
from scorew2.jobs import job

with job(snakemake) as log:
    spec = dict(snakemake.params.spec)
    n, dim, seed = spec.pop("n"), snakemake.params.dim, snakemake.params.seed
    base = snakemake.wildcards.base
    train = make_highdim(base, n, dim, seed, **spec)
    fresh = make_highdim(base, n, dim, seed + 1, **spec)
    save_npz(snakemake.output.data, train=train, fresh=fresh)
    log.info("%s in %d dimensions: %d points, seed %d (fresh: %d)", base, dim, n, seed, seed + 1)
