"""Rule figure_<name>: draw one of the paper's figures in every configured format."""

from scorew2.jobs import job
from scorew2.plots import draw

with job(snakemake) as log:
    draw(
        snakemake.params.name,
        list(snakemake.input),
        list(snakemake.output),
        dpi=snakemake.params.dpi,
        maximize_epochs=snakemake.params.maximize_epochs,
    )
    log.info("%s: wrote %s", snakemake.params.name, ", ".join(snakemake.output))
