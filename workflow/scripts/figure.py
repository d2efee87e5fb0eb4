"""Rule figure_<name>: draw one of the paper's figures in every configured format."""

from scorew2.jobs import job
from scorew2.plots import draw

with job(snakemake) as log:
    p = snakemake.params
    draw(
        p.figure,
        {name: list(files) for name, files in snakemake.input.items()},
        list(snakemake.output),
        sample_datasets=p.sample_datasets,
        dpi=p.dpi,
        maximize_epochs=p.maximize_epochs,
    )
    log.info("%s of %s: wrote %s", p.figure, p.experiment, ", ".join(snakemake.output))
