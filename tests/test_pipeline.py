"""End to end: the smoke config through the whole DAG, and config errors refused up front."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from browser import CHROMIUM, Page

from scorew2.highdim import dim_variants
from scorew2.io import load_csv, load_npz, load_torch
from scorew2.perturb import variants

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "tests" / "smoke" / "config.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
FIGURES = [
    "fig1",
    "fig2",
    "fig2_authors",
    "fig3",
    "figF",
    "fig4a",
    "fig4b",
    "figC_loglog",
    "figC_tsweep",
    "fig4a_tsweep_authors",
    "fig4b_tsweep_authors",
    "figC_tsweep_authors",
    "figR",
    "figD",
]
RUN_COLUMNS = [
    "experiment", "dataset", "regularizer", "seed", "T", "final_jdsm", "final_jsm", "final_w2",
    "w2_floor", "intercept_paper", "intercept_final", "n_checkpoints", "n_violations",
    "intercept_cert", "n_certified", "n_violations_cert",
]  # fmt: skip


def n_groups(exp: dict, plane: bool | None = None) -> int:
    """The run groups of an experiment block: (data set, perturbed set or set in d
    dimensions, regulariser, T); ``plane``: only those of 2-D data (True) or not (False)."""
    if exp.get("kind") == "dimsweep":
        sets = dim_variants(exp["datasets"], exp["dims"])
    else:
        sets = exp["datasets"] + variants(exp["datasets"], exp.get("perturbations", {}))
    if plane is not None and plane != (exp.get("kind") != "dimsweep"):
        return 0
    return len(sets) * len(exp["regularizers"]) * len(exp["T"])


def snakemake(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args], cwd=REPO, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke run's results; in SCOREW2_SMOKE_RESULTS if set (.ci/run keeps them there as
    the SLURM step's local reference, so the smoke config runs locally once per CI run)."""
    kept = os.environ.get("SCOREW2_SMOKE_RESULTS")
    out = Path(kept) if kept else tmp_path_factory.mktemp("smoke") / "results"
    start = time.monotonic()
    snakemake("--configfile", str(SMOKE), "--config", f"results_dir={out}")
    if kept:  # the SLURM step sets its run time against this one (same machine, same run)
        (out.parent / "smoke_seconds").write_text(f"{time.monotonic() - start:.0f}\n")
    return out


def test_every_target_exists(smoke: Path) -> None:
    cfg = yaml.safe_load(SMOKE.read_text())
    for name in FIGURES:
        for ext in cfg["plots"]["formats"]:
            f = smoke / "figures" / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    names = ["runs.csv", "claims.csv", "claims.md", "fig4_schedules.csv", "provenance.json"]
    names += ["theorem3.csv", "dimsweep.csv"]
    for name in [*names, "runtimes.csv"]:
        assert (smoke / "tables" / name).is_file(), name


def test_a_training_job_that_another_covers_does_not_run(smoke: Path) -> None:
    """The smoke config's robustness base set trains what tsweep_authors trains at T = 5 (same
    set, schedule, seeds and regulariser): its run groups read tsweep_authors' models, and no
    job of its own trains them; its perturbed sets train their own."""
    runs = smoke / "runs"
    assert (runs / "tsweep_authors/four_clusters/train_T5/checkpoints.pt").is_file()
    assert not (runs / "robustness/four_clusters/train_T5").exists()
    assert (runs / "robustness/four_clusters/none/T5/bound.csv").is_file()
    assert (runs / "robustness/four_clusters-shift0.2/train_T5/checkpoints.pt").is_file()


def test_the_default_config_trains_each_model_once(tmp_path: Path) -> None:
    """config.yaml: the four clusters of tsweep_authors at T = 10, of robustness and of the
    dimension sweep in d = 2 read loglog's models (each is in loglog's batch); the Gaussian in
    d = 2 (unclipped) is not loglog's clipped set and trains on its own."""
    out = snakemake("-n", "--config", f"results_dir={tmp_path}").stdout
    trained = set(re.findall(r"runs/(\S+)/train_T(\d+)/checkpoints\.pt", out))
    assert ("loglog", "four_clusters", "10") in {(*e.split("/"), t) for e, t in trained}
    shared = {
        "tsweep_authors/four_clusters",
        "robustness/four_clusters",
        "dimsweep/four_clusters-d2",
    }
    assert not {(e, "10") for e in shared} & trained, trained
    assert {("dimsweep/gaussian-d2", "10"), ("tsweep_authors/four_clusters", "50")} <= trained


def test_the_readme_counts_the_slurm_jobs_of_a_full_run(tmp_path: Path) -> None:
    """README, "Grouping": the SLURM jobs of a full run (one per group job, one per job of an
    ungrouped rule; `all` runs no code), the jobs in all, the training jobs and the evaluation
    group jobs, as a dry run of the SLURM profile counts them."""
    out = snakemake(
        "--profile", "profiles/slurm", "-n", "--forceall", "--config", f"results_dir={tmp_path}"
    ).stdout
    groups = yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text())["groups"]
    rules = Counter(re.findall(r"^(?:local)?rule (\w+):", out, re.M))
    group_jobs = Counter(re.findall(r"Group job (\w+) ", out))
    ungrouped = sum(n for rule, n in rules.items() if rule not in groups and rule != "all")
    total = int(re.search(r"^total\s+(\d+)", out, re.M).group(1))
    text = " ".join((REPO / "README.md").read_text().split())
    counted = re.search(
        r"submits (\d+) SLURM jobs instead of (\d+) .*?model: (\d+) jobs\).*?`bound`: (\d+) jobs\)",
        text,
    )
    assert counted, "README: the Grouping paragraph's counts are gone"
    readme = tuple(int(g) for g in counted.groups())
    assert readme == (
        sum(group_jobs.values()) + ungrouped,
        total,
        rules["train"],
        group_jobs["eval"],
    )


def test_runs_table_well_formed(smoke: Path) -> None:
    cfg = yaml.safe_load(SMOKE.read_text())
    runs = pd.read_csv(smoke / "tables" / "runs.csv")
    assert set(RUN_COLUMNS) <= set(runs.columns)
    expected = sum(n_groups(e) * len(e["seeds"]) for e in cfg["experiments"].values())
    assert len(runs) == expected
    dims = runs["experiment"] == "dimsweep"
    swept, runs = runs[dims], runs[~dims]  # no certificate in d > 2
    assert swept["intercept_cert"].isna().all() and (swept["n_certified"] == 0).all()
    assert not swept[[c for c in RUN_COLUMNS if "cert" not in c]].isna().any().any()
    assert not runs[RUN_COLUMNS].isna().any().any()
    assert (runs["final_w2"] > 0).all() and (runs["final_jdsm"] > 0).all()
    assert (runs["final_jsm"] <= runs["final_jdsm"]).all()
    ll = runs[runs["experiment"] == "loglog"]
    assert (ll["n_checkpoints"] >= cfg["training"]["n_checkpoints"]).all()
    assert (runs[runs["experiment"] == "tsweep"]["n_checkpoints"] == 1).all()
    assert (runs["n_certified"] == 1).all()  # every final model, and only those


def test_certified_lipschitz_in_the_run(smoke: Path) -> None:
    """Every final model has a certified L_s at every step, its gap within the tolerance."""
    tol = yaml.safe_load((REPO / "config.yaml").read_text())["evaluation"]["certify_tol"]
    for f in smoke.glob("runs/*/*/*/T*/certified.csv"):
        c = pd.read_csv(f)
        T = int(f.parent.name[1:])
        assert all(sorted(g) == list(range(T)) for _, g in c.groupby("seed")["step"]), f
        gap = c["L_cert_upper"] - c["L_cert_lower"]
        assert c["converged"].all() and (gap >= 0).all(), f
        assert (gap <= tol * np.maximum(1.0, c["L_cert_upper"].abs())).all(), f
        assert ((c["lo0"] < c["hi0"]) & (c["lo1"] < c["hi1"])).all(), f


def test_theorem3_table_covers_every_perturbation_and_pair(smoke: Path) -> None:
    exp = yaml.safe_load(SMOKE.read_text())["experiments"]["robustness"]
    df = pd.read_csv(smoke / "runs/robustness/four_clusters/none/T5/robustness.csv")
    sizes = {(f, s) for f, v in exp["perturbations"].items() for s in v} | {("none", 0.0)}
    assert set(zip(df["family"], df["delta"], strict=True)) == sizes
    assert len(df) == len(sizes) * len(exp["seeds"])
    assert (df["w2_q"] <= df["rhs_measured"] * (1 + 1e-9)).all()  # the triangle inequality
    assert (df.loc[df["family"] != "none", "w2_p"] > 0).all()
    assert df["rhs"].notna().all() and df["rhs_cert"].notna().all()


def test_dimension_sweep_tables(smoke: Path) -> None:
    """Every d-dimensional group: its L_s at clouds (no certificate), moments, and the summary."""
    exp = yaml.safe_load(SMOKE.read_text())["experiments"]["dimsweep"]
    names = dim_variants(exp["datasets"], exp["dims"])
    for name in names:
        group = smoke / "runs" / "dimsweep" / name / "none" / f"T{exp['T'][0]}"
        lips = pd.read_csv(group / "lipschitz_cloud.csv")
        assert (lips["L_s"] >= lips[["L_data", "L_path", "L_between"]].max(axis=1) - 1e-12).all()
        assert not (group / "certified.csv").exists() and not (group / "lipschitz.csv").exists()
        moments = pd.read_csv(group / "moments.csv")
        assert (moments["w2_gelbrich"] > 0).all() and (moments["w2_trivial"] > 0).all()
        bound = pd.read_csv(group / "bound.csv")
        assert (~bound["certified"]).all() and bound["log_bound_cert"].isna().all()
    summary = pd.read_csv(smoke / "tables" / "dimsweep.csv")
    assert len(summary) == len(names) and (summary["runs"] == len(exp["seeds"])).all()


def test_claims_have_computed_verdicts(smoke: Path) -> None:
    claims = pd.read_csv(smoke / "tables" / "claims.csv")
    assert set(claims["verdict"]) <= {"holds", "does not hold", "not evaluated"}
    evaluated = claims[claims["verdict"] != "not evaluated"]
    assert evaluated["seed_check"].str.match(r"stable \(each of 2 seeds|flips without seed").all()
    names = {"bound_holds", "bound_certified", "jsm_le_jdsm", "offset_decays_with_T"}
    names |= {"theorem3_holds", "bound_holds_every_d"}
    assert names | {"ls_tends_to_minus_one"} <= set(claims["claim"])
    md = (smoke / "tables" / "claims.md").read_text()
    assert "config hash" in md and "git commit" in md


def test_bad_config_is_refused_before_any_job(tmp_path: Path) -> None:
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["experiments"]["loglog"]["regularizers"] = ["dropout"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "experiments.loglog.regularizers[0]" in text and "spectral_norm" in text


def comparable_files(root: Path) -> dict[str, bytes]:
    """Every table of a results folder, except run times (wall-clock numbers)."""
    files = sorted(root.glob("runs/**/*.csv")) + sorted((root / "tables").iterdir())
    return {str(f.relative_to(root)): f.read_bytes() for f in files if f.name != "runtimes.csv"}


def test_two_runs_give_byte_identical_tables(smoke: Path, tmp_path: Path) -> None:
    again = tmp_path / "results"
    snakemake("--configfile", str(SMOKE), "--config", f"results_dir={again}")
    first, second = comparable_files(smoke), comparable_files(again)
    assert first.keys() == second.keys() and len(first) > 10
    different = [k for k in first if first[k] != second[k]]
    assert not different, different


def test_corrupt_samples_are_named_and_nothing_downstream_is_written(smoke: Path) -> None:
    group = smoke / "runs" / "loglog" / "moons" / "none" / "T10"
    samples, w2_csv = group / "samples.npz", group / "w2.csv"
    data = samples.read_bytes()
    samples.write_bytes(data[: len(data) // 3])
    w2_csv.unlink()
    proc = snakemake(
        str(w2_csv), "--configfile", str(SMOKE), "--config", f"results_dir={smoke}", check=False
    )
    assert proc.returncode != 0
    log = (smoke / "logs" / "w2" / "loglog" / "moons" / "none" / "T10.log").read_text()
    assert "samples.npz: not a readable .npz file" in log
    assert not w2_csv.exists()
    # leave the shared smoke results as they were, for the tests after this one
    samples.write_bytes(data)
    snakemake(str(w2_csv), "--configfile", str(SMOKE), "--config", f"results_dir={smoke}")
    assert w2_csv.is_file()


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root; skips the test otherwise)."""
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if mount.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _loads(path: Path) -> None:
    loader = {".csv": load_csv, ".npz": load_npz, ".pt": load_torch}.get(path.suffix)
    if loader is not None:
        loader(path)


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(
    smoke: Path, tmp_path: Path
) -> None:
    group = "runs/loglog/moons/none/T10"
    with small_filesystem(tmp_path / "disk", "1m") as disk:
        out = disk / "results"
        args = (str(out / group / "w2.csv"), "--configfile", str(SMOKE))  # train, sample, w2
        proc = snakemake(*args, "--config", f"results_dir={out}", check=False)
        assert proc.returncode != 0
        failed = re.findall(
            r"failed: DiskFullError: .*No space left on device: '(.*)'", proc.stderr
        )
        assert failed and all(Path(f).is_relative_to(out) for f in failed), proc.stderr[-3000:]
        left = [f for f in out.rglob("*") if f.is_file()]
        assert not [f for f in left if f.name.endswith(".tmp")]
        assert not (out / group / "w2.csv").exists()
        for f in left:  # every file the run left reads back whole (a state file may stay)
            _loads(f)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        snakemake(*args, "--config", f"results_dir={out}")  # the same command completes
        for f in [out / group / "w2.csv", *out.glob("runs/**/*.npz")]:
            assert f.read_bytes() == (smoke / f.relative_to(out)).read_bytes(), f.name


def test_two_t_sweeps_with_different_schedules_run_end_to_end(tmp_path: Path) -> None:
    """Experiments are named instances of a kind: a second T sweep gets its own figures and
    claim rows, named after it, and the first keeps the plain names."""
    cfg = yaml.safe_load(SMOKE.read_text())
    sweep = cfg["experiments"]["tsweep"]
    sweep.update(seeds=[0], T=[4, 6])
    slow = {**sweep, "kind": "tsweep", "schedule": {**sweep["schedule"], "beta_end": 0.01}}
    cfg["experiments"] = {"tsweep": sweep, "tsweep_slow": slow}
    cfg["datasets"] = {"four_clusters": {"n": 128, "std": 0.0125}}
    cfg["training"].update(epochs=3, maximize_epochs=1, dense_epochs=1, n_checkpoints=3)
    cfg["evaluation"].update(w2_points=64, lipschitz_grid=4, lipschitz_paths=16)
    cfg["plots"]["formats"] = ["png"]
    cfg["results_dir"] = str(tmp_path / "results")
    path = tmp_path / "two_sweeps.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # the test's config replaces config.yaml (merged over it, config.yaml's loglog would stay)
    own = ("--replace-workflow-config", "--configfile", str(path))
    dry = snakemake("-n", "fig4a_tsweep_slow", *own)
    assert "figure_fig4a_tsweep_slow" in dry.stdout
    snakemake(*own)
    out = tmp_path / "results"
    for name in ("fig4a", "fig4b", "fig4a_tsweep_slow", "fig4b_tsweep_slow"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000, name
    assert not (out / "figures" / "fig1.png").exists()  # no loglog experiment, no figure 1
    claims = pd.read_csv(out / "tables" / "claims.csv")
    assert {"offset_decays_with_T", "offset_decays_with_T[tsweep_slow]"} <= set(claims["claim"])
    assert {"ls_tends_to_minus_one", "ls_tends_to_minus_one[tsweep_slow]"} <= set(claims["claim"])
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert sorted(runs["experiment"].unique()) == ["tsweep", "tsweep_slow"]
    fit = pd.read_csv(out / "tables" / "fig4_schedules.csv")
    assert sorted(fit["experiment"].unique()) == ["tsweep", "tsweep_slow"]
    assert sorted(fit["beta_end"].unique()) == [0.01, 0.1]
    lips = {
        e: pd.read_csv(out / "runs" / e / "four_clusters" / "none" / "T6" / "lipschitz.csv")
        for e in ("tsweep", "tsweep_slow")
    }
    # the same seed and data under two schedules: different models, different L_s
    assert not np.allclose(lips["tsweep"]["L_exact"], lips["tsweep_slow"]["L_exact"])


def _dry_run_rules(*args: str) -> dict[str, int]:
    """The jobs a dry run would run, rule -> count (Snakemake's job stats table)."""
    out = snakemake("-n", *args).stdout
    jobs: dict[str, int] = {}
    if "Job stats:" not in out:
        return jobs
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()
    for line in table[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs


def test_editing_a_module_reruns_exactly_the_jobs_whose_code_reaches_it(
    smoke: Path, tmp_path: Path
) -> None:
    """The workflow of a copy of this tree, on the smoke run's results: after an edit of
    lipschitz.py, the L_s jobs and what follows them are added, and no training job."""
    copy = tmp_path / "repo"
    for name in ("src", "workflow", "profiles"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, copy / name)
    args = ("-s", str(copy / "Snakefile"), "--directory", str(REPO), "--configfile", str(SMOKE))
    args += ("--config", f"results_dir={smoke}")
    # (earlier tests may have left a job pending, e.g. a redrawn figure: compare before/after)
    before = _dry_run_rules(*args)
    assert "lipschitz" not in before and "train" not in before, before
    with open(copy / "src" / "scorew2" / "lipschitz.py", "a") as fh:
        fh.write("\n# an edit\n")
    after = _dry_run_rules(*args)
    added = {k for k, n in after.items() if n > before.get(k, 0)}
    exps = yaml.safe_load(SMOKE.read_text())["experiments"].values()
    exps = list(exps)
    planar, groups = sum(n_groups(e, plane=True) for e in exps), sum(n_groups(e) for e in exps)
    assert after.get("lipschitz", 0) == planar and after.get("bound", 0) == groups
    assert after.get("lipschitz_cloud", 0) == groups - planar  # its clouds use lipschitz.py
    assert {"lipschitz", "bound", "tables", "figure_fig4a"} <= added, (before, after)
    assert not {"data", "train", "sample", "w2", "losses"} & added, (before, after)


def test_the_workflow_runs_as_a_module_of_another(tmp_path: Path) -> None:
    """Another Snakefile imports this workflow with `module` and `use rule *`, gives it its own
    config (the smoke one) and runs it end to end in its own folder."""
    outer = tmp_path / "Snakefile"
    outer.write_text(
        f'configfile: "{SMOKE}"\n\n\n'
        f'module scorew2:\n    snakefile:\n        "{REPO / "Snakefile"}"\n'
        "    config:\n        config\n\n\n"
        "use rule * from scorew2 as scorew2_*\n"
    )
    out = tmp_path / "results"
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "-s", str(outer), "--config", f"results_dir={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (out / "tables" / "claims.csv").is_file()
    assert (out / "figures" / "fig4b.png").stat().st_size > 1000
    claims = pd.read_csv(out / "tables" / "claims.csv")
    assert len(claims) >= 8
    assert set(claims["verdict"]) <= {"holds", "does not hold", "not evaluated"}


REPORT_CHECK = """(async () => {
  const out = [];
  for (const r of Object.values(results)) {
    let ok = false;
    if (r.mime_type.startsWith("image/")) {
      const img = new Image();
      img.src = r.data_uri;
      try { await img.decode(); ok = img.naturalWidth > 0 && img.naturalHeight > 0; }
      catch (e) { ok = false; }
    } else {
      ok = (await (await fetch(r.data_uri)).text()).length > 0;
    }
    out.push([r.name, r.mime_type, ok]);
  }
  return {items: out, text: document.body.innerText.length};
})()"""


def test_report_renders_in_a_real_browser(smoke: Path) -> None:
    """snakemake --report for the smoke run, opened in headless Chromium: every figure and
    table it lists decodes, the page raises no script error; a screenshot is saved."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed")
    report = smoke / "report.html"
    snakemake(
        "--configfile", str(SMOKE), "--config", f"results_dir={smoke}", "--report", str(report)
    )
    page = Page()
    try:
        page.open(report)
        time.sleep(1.0)  # let the report's app render before the screenshot
        found = page.evaluate(REPORT_CHECK)
        page.screenshot(smoke / "report.png")
        errors = page.script_errors()
    finally:
        page.close()
    items = found["items"]
    names = {name for name, _, _ in items}
    figures = {f"{f}.png" for f in FIGURES}
    assert figures | {"runs.csv", "claims.csv", "claims.md", "provenance.json"} <= names, names
    assert all(ok for _, _, ok in items), [i for i in items if not i[2]]
    assert sum(mime.startswith("image/") for _, mime, _ in items) == len(figures)
    assert found["text"] > 50 and not errors, errors  # the app rendered its menu
    assert (smoke / "report.png").stat().st_size > 10_000
