# Figures of the paper (and figure F of its appendix), each its own rule and named target.


def figure_inputs(name):
    exp = FIGURES[name]
    if name == "fig4a":
        return group_files("lipschitz.csv", exp)
    files = group_files("bound.csv", exp)
    if name == "fig2":
        files += [f for f in group_files("samples.npz", exp) if "/none/" in f]
        files += [f"{R}/data/{d}.npz" for d in EXPERIMENTS[exp]["datasets"]]
    return files


for _name in FIGURES:

    rule:
        name:
            f"figure_{_name}"
        input:
            figure_inputs(_name) if FIGURES[_name] in EXPERIMENTS else [],
        output:
            report(
                f"{R}/figures/{_name}.png",
                caption=f"../report/{_name}.rst",
                category="Figures",
            ),
            *[f"{R}/figures/{_name}.{ext}" for ext in config["plots"]["formats"] if ext != "png"],
        params:
            name=_name,
            dpi=config["plots"]["dpi"],
            maximize_epochs=config["training"]["maximize_epochs"],
        log:
            f"{R}/logs/figures/{_name}.log",
        conda:
            CONDA_ENV
        script:
            "../scripts/figure.py"

    rule:
        name:
            _name
        input:
            figure_files(_name),
