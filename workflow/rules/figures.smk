# Figures of the paper (and figure F of its appendix): one rule per (figure, experiment), with
# named inputs (the tables it draws, and for figure 2 the samples it shows) and a named target
# (`snakemake fig4a`; a second experiment of a kind: `snakemake fig4a_<experiment>`).

for _figure, _exp in figure_jobs():
    _stem = figure_stem(_figure, _exp)

    rule:
        name:
            f"figure_{_stem}"
        input:
            **get_figure_inputs(_figure, _exp),
        output:
            report(
                f"{R}/figures/{_stem}.png",
                caption=f"../report/{_figure}.rst",
                category="Figures",
                subcategory=_exp,
            ),
            *[f"{R}/figures/{_stem}.{ext}" for ext in config["plots"]["formats"] if ext != "png"],
        log:
            f"{R}/logs/figures/{_stem}.log",
        conda:
            CONDA_ENV
        params:
            code=get_code("figure"),
            figure=_figure,
            experiment=_exp,
            sample_datasets=get_sample_datasets(_figure, _exp),
            dpi=config["plots"]["dpi"],
            maximize_epochs=config["training"]["maximize_epochs"],
        script:
            "../scripts/figure.py"

    rule:
        name:
            _stem
        input:
            figure_files(_figure, _exp),
