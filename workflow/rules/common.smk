# Shared helpers: config validation, run groups, paths, and the input and parameter functions
# (get_*) of every rule.
from pathlib import Path

from snakemake.utils import min_version

from scorew2.codeversion import code_version
from scorew2.config import load_schema, validate_config
from scorew2.data import DEFAULTS as DATA_DEFAULTS
from scorew2.highdim import dim_variants, parse_dim, plane_twin
from scorew2.perturb import parse_variant, variants
from scorew2.runs import REGULARIZERS, TrainingJob, experiment_kinds, ordered, shared_training

min_version("9.20")

# Refuse a bad config before any job runs (scorew2.config names the key and allowed values).
config.update(
    validate_config(config, load_schema(workflow.source_path("../schemas/config.schema.yaml")))
)

# Every rule's software (documentation for --use-conda; setup.sh is what runs here).
CONDA_ENV = "../envs/scorew2.yaml"

# this workflow's own folder (absolute; workflow.source_path would give a cached copy)
WORKFLOW_DIR = Path(workflow.current_basedir).resolve().parent

R = config["results_dir"]
EXPERIMENTS = config["experiments"]
KINDS = experiment_kinds(EXPERIMENTS)

# The figures each experiment kind draws.
KIND_FIGURES = {
    "loglog": ("fig1", "fig2", "fig2_authors", "fig3", "figF", "figC"),
    "tsweep": ("fig4a", "fig4b", "figC"),
    "robustness": ("figR",),
    "dimsweep": ("figD",),
}

# Where the files of a run group, and of a training job, live.
GROUP = f"{R}/runs/{{exp}}/{{dataset}}/{{reg}}/T{{T}}"
TRAINED = f"{R}/runs/{{exp}}/{{dataset}}/train_T{{T}}/checkpoints.pt"


wildcard_constraints:
    exp="|".join(EXPERIMENTS),
    # a data set, one perturbed (scorew2.perturb), or one in d dimensions (scorew2.highdim)
    dataset=r"[a-z_]+(-(shift|mass)[0-9.e+-]+|-d[0-9]+)?",
    reg="|".join(REGULARIZERS),
    T=r"\d+",


def get_code(script):
    """A hash of a job script and of every scorew2 module it runs (scorew2.codeversion): as a
    param, an edit to one module reruns exactly the jobs whose code reaches it."""
    return code_version(WORKFLOW_DIR / "scripts" / f"{script}.py", WORKFLOW_DIR.parent / "src")


def experiment_datasets(ex):
    """The data sets an experiment trains on: its own, then (robustness) every perturbed one;
    (dimsweep) each of its own in every dimension instead."""
    if ex["kind"] == "dimsweep":
        return dim_variants(ex["datasets"], ex["dims"])
    return list(ex["datasets"]) + variants(ex["datasets"], ex.get("perturbations", {}))


def run_groups(exp=None):
    """One run group per (experiment, data set, regulariser, T) (of ``exp`` when given)."""
    return [
        dict(exp=e, dataset=d, reg=r, T=t)
        for e, ex in EXPERIMENTS.items()
        if exp is None or e == exp
        for d in experiment_datasets(ex)
        for r in ex["regularizers"]
        for t in ex["T"]
    ]


def in_plane(g):
    """Whether a run group's data are 2-D: the grid L_s and its certificate exist only there
    (the dimension sweep has point-cloud L_s and moment W2 instead)."""
    return KINDS[g["exp"]] != "dimsweep"


def group_files(name, exp=None, reg=None, where=None):
    """The file ``name`` of every run group (of one experiment, one regulariser, those for
    which ``where(group)`` holds, if given)."""
    return [
        f"{GROUP}/{name}".format(**g)
        for g in run_groups(exp)
        if (reg is None or g["reg"] == reg) and (where is None or where(g))
    ]


def lipschitz_table(g):
    """A run group's L_s table: the grid's in the plane, the point cloud's elsewhere."""
    return "lipschitz.csv" if in_plane(g) else "lipschitz_cloud.csv"


def lipschitz_files(exp=None):
    """Every run group's L_s table (``lipschitz_table``)."""
    return [f"{GROUP}/{lipschitz_table(g)}".format(**g) for g in run_groups(exp)]


def get_bound_inputs(w):
    """A bound job's named inputs: W2, losses, its L_s table, and the certified L_s (2-D)."""
    g = dict(exp=w.exp, dataset=w.dataset, reg=w.reg, T=w.T)
    out = {k: f"{GROUP}/{k}.csv".format(**g) for k in ("w2", "losses", "certified")}
    out["lipschitz"] = f"{GROUP}/{lipschitz_table(g)}".format(**g)
    if not in_plane(g):
        out.pop("certified")
    return out


def get_law(w):
    """The parameters of a d-dimensional set's law (its base set's, without ``n``)."""
    spec = dict(config["datasets"][parse_dim(w.dataset)[0]])
    spec.pop("n")
    return spec


def training_jobs():
    """Every (experiment, data set, T) of the config as a ``TrainingJob``, in config order."""
    return [
        TrainingJob(
            e,
            d,
            int(t),
            trains_on=plane_twin(d, config["datasets"]),
            schedule=tuple(ex["schedule"][k] for k in ("kind", "beta_start", "beta_end")),
            regularizers=tuple(ex["regularizers"]),
            seeds=tuple(ex["seeds"]),
        )
        for e, ex in EXPERIMENTS.items()
        for d in experiment_datasets(ex)
        for t in ex["T"]
    ]


# (experiment, data set, T) -> the training job whose checkpoints file holds its models; a job
# that another covers does not run (scorew2.runs.shared_training). In config.yaml, the four
# clusters of tsweep_authors at T = 10, of robustness and of dimsweep in d = 2 read loglog's.
TRAINED_BY = shared_training(training_jobs())


def trained_file(job):
    """The checkpoints file a ``TrainingJob`` writes."""
    return TRAINED.format(exp=job.experiment, dataset=job.dataset, T=job.T)


def get_checkpoints(w):
    """The checkpoints file that holds a run group's models (``TRAINED_BY``)."""
    return trained_file(TRAINED_BY[(w.exp, w.dataset, int(w.T))])


def train_files():
    """The checkpoints file of every training job that runs."""
    return sorted({trained_file(job) for job in TRAINED_BY.values()})


def get_schedule(w):
    """The noise schedule of a job's experiment at the job's T."""
    sch = EXPERIMENTS[w.exp]["schedule"]
    return dict(
        T=int(w.T), kind=sch["kind"], beta_start=sch["beta_start"], beta_end=sch["beta_end"]
    )


def get_sweep_schedules():
    """The schedule block of every tsweep experiment (figure 4 against the poster's)."""
    return {e: EXPERIMENTS[e]["schedule"] for e, kind in KINDS.items() if kind == "tsweep"}


def get_group_run(w):
    """What an evaluation job of a run group reads: schedule, prior, evaluated checkpoints."""
    ex = EXPERIMENTS[w.exp]
    return dict(schedule=get_schedule(w), prior=ex["prior"], checkpoints=ex["checkpoints"])


def get_final_run(w):
    """``get_group_run`` for the final models only (what the certificate covers)."""
    return dict(get_group_run(w), checkpoints="final")


def get_train_batch(w):
    """What a training job trains: every regulariser's seeds of one (experiment, data set, T)."""
    ex = EXPERIMENTS[w.exp]
    return dict(
        schedule=get_schedule(w),
        regularizers=list(ex["regularizers"]),
        seeds=list(ex["seeds"]),
    )


def get_train_settings(w):
    """The training settings; the clipping bound only when a weight_clip run trains."""
    tr = dict(config["training"])
    if "weight_clip" not in EXPERIMENTS[w.exp]["regularizers"]:
        tr.pop("weight_clip")
    return tr


def get_train_state(w):
    """A training job's resume state file (not an output: it must survive a failed job)."""
    return f"{R}/runs/{w.exp}/{w.dataset}/train_T{w.T}/train_state.pt"


def get_perturbation(w):
    """What the perturb job applies: family, size and the base set's cluster centre c."""
    center = config["datasets"][w.base].get("center", DATA_DEFAULTS[w.base]["center"])
    return dict(family=w.family, size=float(w.size), center=center)


def robustness_groups(exp=None):
    """The run groups of the unperturbed data sets of every robustness experiment (of
    ``exp`` when given): one Theorem 3 table each."""
    return [
        g
        for g in run_groups(exp)
        if KINDS[g["exp"]] == "robustness" and parse_variant(g["dataset"]) is None
    ]


def robustness_files(exp=None):
    return [f"{GROUP}/robustness.csv".format(**g) for g in robustness_groups(exp)]


def get_perturbed(w):
    """The perturbed sets of a robustness table's data set: [(name, family, size)]."""
    names = variants([w.dataset], EXPERIMENTS[w.exp]["perturbations"])
    return [(n, *parse_variant(n)[1:]) for n in names]


def get_robustness_inputs(w):
    """A robustness table's named inputs: the base run group's samples and bound, and the
    same of every perturbed set (in the order of ``get_perturbed``)."""
    groups = [w.dataset] + [n for n, _, _ in get_perturbed(w)]
    path = f"{R}/runs/{w.exp}/{{}}/{w.reg}/T{w.T}/{{}}"
    return dict(
        samples=[path.format(d, "samples.npz") for d in groups],
        bounds=[path.format(d, "bound.csv") for d in groups],
    )


def figure_stem(figure, exp):
    """A figure's file name: the plain figure name for the experiment named after its kind,
    the figure and experiment names otherwise (``fig4a_tsweep_slow``) and for a figure that
    several kinds draw (``figC_loglog``)."""
    shared = sum(figure in figs for figs in KIND_FIGURES.values()) > 1
    return figure if exp == KINDS[exp] and not shared else f"{figure}_{exp}"


def figure_jobs():
    """(figure, experiment) for every figure of every configured experiment."""
    return [(f, e) for e, kind in KINDS.items() for f in KIND_FIGURES[kind]]


def figure_files(figure, exp):
    return [f"{R}/figures/{figure_stem(figure, exp)}.{ext}" for ext in config["plots"]["formats"]]


def sample_regularizer(exp):
    """The regulariser whose samples figure 2 shows: the first of the experiment's, in the
    order of scorew2.runs.REGULARIZERS."""
    return ordered(EXPERIMENTS[exp]["regularizers"], REGULARIZERS)[0]


def get_figure_inputs(figure, exp):
    """A figure's named inputs: its tables, and for figure 2 the samples and data it shows."""
    if figure == "fig4a":
        return dict(lipschitz=group_files("lipschitz.csv", exp))
    if figure == "figR":
        return dict(robustness=robustness_files(exp))
    if figure == "figD":
        return dict(
            bounds=group_files("bound.csv", exp),
            lipschitz=lipschitz_files(exp),
            moments=group_files("moments.csv", exp),
        )
    inputs = dict(bounds=group_files("bound.csv", exp))
    if figure == "figC":
        inputs["lipschitz"] = group_files("lipschitz.csv", exp)
        inputs["certified"] = group_files("certified.csv", exp)
    if figure == "fig2":
        inputs["samples"] = group_files("samples.npz", exp, sample_regularizer(exp))
    return inputs


def get_sample_datasets(figure, exp):
    """The data set of each samples file of ``get_figure_inputs`` (in the same order)."""
    if figure != "fig2":
        return []
    return [g["dataset"] for g in run_groups(exp) if g["reg"] == sample_regularizer(exp)]


def all_targets():
    names = (
        "runs.csv",
        "claims.md",
        "claims.csv",
        "fig4_schedules.csv",
        "theorem3.csv",
        "dimsweep.csv",
    )
    out = [f"{R}/tables/{name}" for name in names]
    out += [f"{R}/tables/runtimes.csv"]
    for figure, exp in figure_jobs():
        out += figure_files(figure, exp)
    return out
