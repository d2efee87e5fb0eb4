"""Tests of scorew2.plots: every figure is written (png and pdf) from small synthetic tables laid
out like the pipeline's, bad input names the file and the column, and outputs are atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scorew2.io import CorruptFileError, save_csv, save_npz
from scorew2.perturb import perturb
from scorew2.plots import FIGURES, draw
from scorew2.robustness import Run, theorem3_table
from scorew2.runs import GroupId

torch.set_num_threads(1)

SEEDS = (0, 1)
EPOCHS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
MAXIMIZE = 3


def _bound_rows(exp, ds, reg, T, epochs, rng):
    rows = []
    for seed in SEEDS:
        for e in epochs:
            jsm = float(np.exp(3.0 - np.log1p(e) + 0.1 * rng.standard_normal()))
            floor = 0.8
            w2 = float(0.5 * np.sqrt(jsm + floor) * np.exp(0.05 * rng.standard_normal()))
            c, cp = 0.1 + 0.01 * seed, 0.3
            rows.append(
                dict(
                    experiment=exp,
                    dataset=ds,
                    regularizer=reg,
                    T=T,
                    seed=seed,
                    epoch=e,
                    jdsm=jsm + floor,
                    jsm=jsm,
                    dsm_floor=floor,
                    w2=w2,
                    w2_floor=0.02,
                    w2_T=0.0 if exp == "loglog" else 0.5 / T,
                    log_intercept=c,
                    log_intercept_paper=cp,
                    log_I_T=2.0 - T / 5,
                    offset=np.exp(2.0 - T / 5) / T,
                    corollary2_offset=np.exp(3.0 - T / 10),
                    log_bound=c + 0.5 * np.log(jsm + floor),
                    violation=bool(seed and e == 5),
                    certified=e == epochs[-1],
                    log_bound_cert=c + 0.2 + 0.5 * np.log(jsm + floor)
                    if e == epochs[-1]
                    else np.nan,
                )
            )
    return rows


def _robustness_table(rng: np.random.Generator) -> pd.DataFrame:
    """Theorem 3's table of a base run and two sizes of each perturbation (random samples)."""

    def run(ref: np.ndarray) -> Run:
        samples = dict(
            samples=ref + 0.05 * rng.normal(size=(len(SEEDS), *ref.shape)),
            seeds=np.array(SEEDS),
            epochs=np.full(len(SEEDS), 100),
            ref=ref,
        )
        bound = pd.DataFrame(
            dict(seed=SEEDS, epoch=100, w2=0.1, log_bound=rng.normal(size=len(SEEDS)) + 3.0,
                 log_bound_cert=4.0)
        )  # fmt: skip
        return Run.final(samples, bound)

    x = rng.normal(size=(40, 2))
    sizes = [(f, d) for f in ("shift", "mass") for d in (0.1, 0.3)]
    group = GroupId("robustness", "four_clusters", "none", 10)
    return theorem3_table(group, run(x), [(f, d, run(perturb(x, f, d, 0.5))) for f, d in sizes])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    """The named files figures.smk gives each figure, for a smoke-sized config."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    bound, samples, lip, tbound, cert = [], [], [], [], []
    for ds in ("four_clusters", "moons"):
        x = rng.normal(size=(60, 2))
        save_npz(root / f"data/{ds}.npz", train=x, fresh=x + 0.01)
        for reg in ("none", "spectral_norm"):
            g = root / f"runs/loglog/{ds}/{reg}/T10"
            save_csv(pd.DataFrame(_bound_rows("loglog", ds, reg, 10, EPOCHS, rng)), g / "bound.csv")
            bound.append(str(g / "bound.csv"))
            m = len(SEEDS) * len(EPOCHS)
            save_npz(
                g / "samples.npz",
                samples=rng.normal(size=(m, 50, 2)).astype(np.float32),
                seeds=np.repeat(SEEDS, len(EPOCHS)),
                epochs=np.tile(EPOCHS, len(SEEDS)),
                ref=x[:50],
            )
            if reg == "none":
                samples.append(str(g / "samples.npz"))
    for T in (5, 10):
        g = root / f"runs/tsweep/four_clusters/none/T{T}"
        save_csv(
            pd.DataFrame(_bound_rows("tsweep", "four_clusters", "none", T, [100], rng)),
            g / "bound.csv",
        )
        tbound.append(str(g / "bound.csv"))
        steps = np.arange(T)
        rows = [
            dict(
                experiment="tsweep",
                dataset="four_clusters",
                regularizer="none",
                T=T,
                seed=s,
                epoch=100,
                step=i,
                L_s=5 - 6 * i / T + 0.1 * s,
                L_paper=4 - 5 * i / T,
                L_exact=5.5 - 6.5 * i / T,
            )
            for s in SEEDS
            for i in steps
        ]
        save_csv(pd.DataFrame(rows), g / "lipschitz.csv")
        lip.append(str(g / "lipschitz.csv"))
        c = pd.DataFrame(rows).drop(columns=["L_s", "L_paper", "L_exact"])
        c["L_cert_lower"] = [r["L_s"] + 0.3 for r in rows]
        c["L_cert_upper"] = c["L_cert_lower"] + 1e-3
        save_csv(c, g / "certified.csv")
        cert.append(str(g / "certified.csv"))
    rob = root / "runs/robustness/four_clusters/none/T10/robustness.csv"
    save_csv(_robustness_table(rng), rob)
    return {
        "figD": _dimsweep_files(root, rng),
        "figR": {"robustness": [str(rob)]},
        "fig1": {"bounds": bound},
        "fig2_authors": {"bounds": bound},
        "fig3": {"bounds": bound},
        "figF": {"bounds": bound},
        "fig2": {"bounds": bound, "samples": samples},
        "fig4a": {"lipschitz": lip},
        "fig4b": {"bounds": tbound},
        "figC": {"bounds": tbound, "lipschitz": lip, "certified": cert},
    }


def _dimsweep_files(root: Path, rng: np.random.Generator) -> dict[str, list[str]]:
    """Bound, cloud L_s and moments tables of a dimension sweep (random values)."""
    files: dict[str, list[str]] = {"bounds": [], "lipschitz": [], "moments": []}
    for base in ("gaussian", "four_clusters"):
        for d in (2, 4, 8):
            g = root / f"runs/dimsweep/{base}-d{d}/none/T3"
            key = [dict(experiment="dimsweep", dataset=f"{base}-d{d}", regularizer="none", T=3,
                        seed=s, epoch=9) for s in SEEDS]  # fmt: skip
            w = rng.uniform(0.1, 1.0, len(SEEDS)) * d**0.5
            b = [k | dict(jdsm=1 + d, dsm_floor=d, w2=x, w2_floor=0.9 * x,
                          log_intercept=0.2 * d, log_bound=np.log(3 * x))
                 for k, x in zip(key, w, strict=True)]  # fmt: skip
            L = [k | dict(step=i, L_s=1.0 - i, L_exact=1e4 / (i + 1), L_law=-1.0)
                 for k in key for i in range(3)]  # fmt: skip
            m = [k | dict(w2_gelbrich=0.5 * x, w2_gelbrich_floor=0.1, w2_trivial=2 * d)
                 for k, x in zip(key, w, strict=True)]  # fmt: skip
            for name, rows in (("bounds", b), ("lipschitz", L), ("moments", m)):
                save_csv(pd.DataFrame(rows), g / f"{name}.csv")
                files[name].append(str(g / f"{name}.csv"))
    return files


SAMPLE_DATASETS = ["four_clusters", "moons"]


def draw_fig(name, inputs, outs, **kw):
    draw(name, inputs, outs, sample_datasets=SAMPLE_DATASETS if name == "fig2" else (), **kw)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_written_in_png_and_pdf(inputs, tmp_path, name):
    outs = [tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"]
    draw_fig(name, inputs[name], outs, dpi=40, maximize_epochs=MAXIMIZE)
    assert outs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outs[1].read_bytes()[:5] == b"%PDF-"
    assert all(o.stat().st_size > 1000 for o in outs)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(o.name for o in outs)  # no .tmp


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_are_byte_identical_when_redrawn(inputs, tmp_path, name):
    outs = []
    for k in range(2):
        np.random.seed(100 + k)  # noqa: NPY002 (any state of the global generator)
        outs.append(tmp_path / f"{name}_{k}.png")
        draw_fig(name, inputs[name], [outs[-1]], dpi=30, maximize_epochs=MAXIMIZE)
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_redraw_overwrites_and_input_order_does_not_matter(inputs, tmp_path):
    out = tmp_path / "f.png"
    draw("fig4b", inputs["fig4b"], [out], dpi=30)
    first = out.stat().st_size
    draw("fig4b", {"bounds": inputs["fig4b"]["bounds"][::-1]}, [out], dpi=30)
    assert out.stat().st_size > 0 and abs(out.stat().st_size - first) < 0.1 * first


def test_single_seed_and_single_T(inputs, tmp_path):
    lip = pd.read_csv(inputs["fig4a"]["lipschitz"][0])
    one = tmp_path / "lipschitz.csv"
    lip[lip["seed"] == 0].to_csv(one, index=False)
    draw("fig4a", {"lipschitz": [one]}, [tmp_path / "a.png"], dpi=30)
    assert (tmp_path / "a.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("name", "column"), [("fig1", "w2"), ("figF", "jsm"), ("fig4a", "L_exact")]
)
def test_missing_column_names_file_and_column(inputs, tmp_path, name, column):
    ((table, files),) = inputs[name].items()
    bad = tmp_path / Path(files[0]).name
    pd.read_csv(files[0]).drop(columns=[column]).to_csv(bad, index=False)
    with pytest.raises(CorruptFileError, match=rf"{bad.name}.*{column}") as err:
        draw(name, {table: [bad, *files[1:]]}, [tmp_path / "x.png"], dpi=30, maximize_epochs=3)
    assert isinstance(err.value, ValueError)
    assert str(bad) in str(err.value)
    assert not (tmp_path / "x.png").exists()


def test_bad_arguments(inputs, tmp_path):
    with pytest.raises(ValueError, match="name: unknown figure 'fig9'"):
        draw("fig9", inputs["fig1"], [tmp_path / "x.png"])
    with pytest.raises(ValueError, match="fig4a: no lipschitz input"):
        draw("fig4a", inputs["fig4b"], [tmp_path / "x.png"])
    with pytest.raises(ValueError, match="fig2: no samples input"):
        draw("fig2", inputs["fig1"], [tmp_path / "x.png"], dpi=30, maximize_epochs=3)
    with pytest.raises(ValueError, match="2 samples files for 1 data sets"):
        draw("fig2", inputs["fig2"], [tmp_path / "x.png"], sample_datasets=["moons"])
    with pytest.raises(ValueError, match="samples: none for data set"):
        draw("fig2", inputs["fig2"], [tmp_path / "x.png"], sample_datasets=["moons", "moons"])
