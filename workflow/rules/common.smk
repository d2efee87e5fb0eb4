# Shared helpers: config validation, run groups, paths and the parameters each rule sees.
from pathlib import Path

from snakemake.utils import min_version

from scorew2.config import load_schema, validate_config

min_version("9.20")

# Refuse a bad config before any job runs (scorew2.config names the key and allowed values).
config.update(validate_config(config, load_schema(workflow.source_path("../schemas/config.schema.yaml"))))

# Every rule's software (documentation for --use-conda; setup.sh is what runs here).
CONDA_ENV = "../envs/scorew2.yaml"

R = config["results_dir"]
EXPERIMENTS = config["experiments"]


wildcard_constraints:
    exp="|".join(EXPERIMENTS),
    dataset="[a-z_]+",
    reg="none|spectral_norm|weight_clip",
    T=r"\d+",


def groups():
    """One run group per (experiment, data set, regulariser, T); its seeds train together."""
    return [
        dict(exp=e, dataset=d, reg=r, T=t)
        for e, ex in EXPERIMENTS.items()
        for d in ex["datasets"]
        for r in ex["regularizers"]
        for t in ex["T"]
    ]


def train_dir(w):
    """Where the training job of (experiment, data set, T) writes: every regulariser's seeds."""
    return f"{R}/runs/{w.exp}/{w.dataset}/train_T{w.T}"


def group_files(name, exp=None):
    """The file ``name`` of every run group (of one experiment when ``exp`` is given)."""
    return [
        f"{R}/runs/{g['exp']}/{g['dataset']}/{g['reg']}/T{g['T']}/{name}"
        for g in groups()
        if exp is None or g["exp"] == exp
    ]


def schedule_params(w):
    sch = EXPERIMENTS[w.exp]["schedule"]
    return dict(T=int(w.T), kind=sch["kind"], beta_start=sch["beta_start"], beta_end=sch["beta_end"])


def run_params(w):
    """What identifies the runs of a group: schedule, regulariser, seeds, data set."""
    return dict(
        schedule=schedule_params(w),
        regularizer=w.reg,
        seeds=list(EXPERIMENTS[w.exp]["seeds"]),
        dataset=w.dataset,
        prior=EXPERIMENTS[w.exp]["prior"],
        checkpoints=EXPERIMENTS[w.exp]["checkpoints"],
    )


def train_params(w):
    """What a training job trains: every regulariser's seeds of one (experiment, data set, T)."""
    return dict(
        schedule=schedule_params(w),
        regularizers=list(EXPERIMENTS[w.exp]["regularizers"]),
        seeds=list(EXPERIMENTS[w.exp]["seeds"]),
    )


def training_params(w):
    """The training settings; the clipping bound only when a weight_clip run trains."""
    tr = dict(config["training"])
    if "weight_clip" not in EXPERIMENTS[w.exp]["regularizers"]:
        tr.pop("weight_clip")
    return tr


# The checkpoints file of a training job: every regulariser's seeds of (experiment, data set, T).
TRAINED = f"{R}/runs/{{exp}}/{{dataset}}/train_T{{T}}/checkpoints.pt"


def train_files():
    """The checkpoints file of every training job."""
    return [
        TRAINED.format(exp=e, dataset=d, T=t)
        for e, ex in EXPERIMENTS.items()
        for d in ex["datasets"]
        for t in ex["T"]
    ]


def figure_files(name):
    return [f"{R}/figures/{name}.{ext}" for ext in config["plots"]["formats"]]


FIGURES = {
    "fig1": "loglog",
    "fig2": "loglog",
    "fig3": "loglog",
    "figF": "loglog",
    "fig4a": "tsweep",
    "fig4b": "tsweep",
}


def active_figures():
    """Figures whose experiment the config runs."""
    return [f for f, e in FIGURES.items() if e in EXPERIMENTS]


def all_targets():
    out = [f"{R}/tables/runs.csv", f"{R}/tables/claims.md", f"{R}/tables/claims.csv"]
    out += [f"{R}/tables/runtimes.csv"]
    for f in active_figures():
        out += figure_files(f)
    return out
