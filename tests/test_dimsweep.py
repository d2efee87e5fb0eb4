"""The dimension sweep: d-dimensional data, W2 by moments, L_s at point clouds, its table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scorew2.checkpoints import load_checkpoints, save_checkpoints
from scorew2.data import make_dataset
from scorew2.dimsweep import AT_FLOOR, claim_dimsweep, dimsweep_runs, dimsweep_summary
from scorew2.evaluate import RunGroup
from scorew2.evaluate.cloud import cloud_lipschitz_group, embedded_paper_grid
from scorew2.evaluate.losses import loss_group
from scorew2.highdim import (
    dim_name,
    dim_variants,
    law_lipschitz,
    make_highdim,
    parse_dim,
    plane_twin,
)
from scorew2.lipschitz import jacobian_sym_eigs
from scorew2.metrics import moments_group
from scorew2.moments import gaussian_w2, law_moments, sample_moments, trivial_upper
from scorew2.runs import GroupId
from scorew2.schedule import make_schedule
from scorew2.score import empirical_score_jacobian_eigs, noised_points
from scorew2.streams import torch_generator
from scorew2.train import TrainConfig, train
from scorew2.wasserstein import w2

torch.set_num_threads(1)
SCHED = make_schedule("sigmoid", 4, 1e-4, 0.2)


# ----------------------------------------------------------------------------- data and names
def test_names_round_trip() -> None:
    assert dim_name("gaussian", 8) == "gaussian-d8"
    assert parse_dim("four_clusters-d32") == ("four_clusters", 32)
    assert parse_dim("four_clusters") is None and parse_dim("four_clusters-shift0.1") is None
    assert dim_variants(["gaussian", "four_clusters"], [2, 4]) == [
        "gaussian-d2",
        "gaussian-d4",
        "four_clusters-d2",
        "four_clusters-d4",
    ]
    with pytest.raises(ValueError, match="data set"):
        dim_name("moons", 4)


def test_clusters_keep_the_plane_and_append_noise_coordinates() -> None:
    x = make_highdim("four_clusters", 4000, 6, seed=3, std=0.05)
    assert x.shape == (4000, 6) and x.dtype == np.float64
    np.testing.assert_array_equal(x[:, :2], make_dataset("four_clusters", 4000, 3, std=0.05))
    assert np.std(x[:, 2:], axis=0) == pytest.approx(np.full(4, 0.05), rel=0.05)
    # the appended part is a stream of its own: another d, another draw; the same d, the same
    assert not np.array_equal(make_highdim("four_clusters", 50, 4, 3)[:, 2:], x[:50, 2:4])
    np.testing.assert_array_equal(
        make_highdim("four_clusters", 50, 4, 3), make_highdim("four_clusters", 50, 4, 3)
    )


def test_gaussian_is_unclipped_with_the_configured_variance() -> None:
    x = make_highdim("gaussian", 20000, 5, seed=0, var=0.1, clip=1.0)
    assert np.abs(x).max() > 1.0  # clip is not applied
    assert np.var(x, axis=0) == pytest.approx(np.full(5, 0.1), rel=0.05)


@pytest.mark.parametrize(
    ("name", "clip", "twin"),
    [
        ("four_clusters-d2", 1.0, "four_clusters"),
        ("gaussian-d2", np.inf, "gaussian"),
        ("gaussian-d2", 1.0, "gaussian-d2"),  # the embedding drops the clip: another set
        ("four_clusters-d4", 1.0, "four_clusters-d4"),
    ],
)
def test_a_set_in_the_plane_is_its_twin_only_where_the_arrays_are_equal(
    name: str, clip: float, twin: str
) -> None:
    datasets = {
        "four_clusters": {"n": 300, "std": 0.05},
        "gaussian": {"n": 300, "var": 1.0, "clip": clip},  # var 1: the clip of 1 acts
    }
    assert plane_twin(name, datasets) == twin
    base, dim = parse_dim(name)
    params = {k: v for k, v in datasets[base].items() if k != "n"}
    embedded = make_highdim(base, 300, dim, 11, **params)
    same = embedded.shape[1] == 2 and np.array_equal(
        embedded, make_dataset(base, 300, 11, **params)
    )
    assert same == (twin == base)
    assert plane_twin(base, datasets) == base and plane_twin("moons", datasets) == "moons"


@pytest.mark.parametrize(
    ("base", "dim", "match"),
    [("moons", 4, "data set"), ("gaussian", 1, "dim"), ("gaussian", 2.5, "dim")],
)
def test_bad_highdim_input(base: str, dim, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_highdim(base, 10, dim, 0)


def test_law_lipschitz_is_the_gaussian_scores_jacobian() -> None:
    """-1 / (abar v + 1 - abar): the exact score of a large Gaussian sample agrees."""
    abar = np.array([0.99, 0.5, 0.05])
    L = law_lipschitz("gaussian", abar, var=0.1)
    np.testing.assert_allclose(L, -1.0 / (abar * 0.1 + 1.0 - abar))
    data = make_highdim("gaussian", 4000, 3, seed=1, var=0.1)
    for a, ref in zip(abar[1:], L[1:], strict=True):  # broad enough noise: the law's score
        eigs = empirical_score_jacobian_eigs(np.zeros((1, 3)), data, float(a))
        assert float(eigs[0]) == pytest.approx(ref, rel=0.05)
    assert np.isnan(law_lipschitz("four_clusters", abar)).all()


# ----------------------------------------------------------------------------- moments
def test_gaussian_w2_closed_forms() -> None:
    d = 4
    assert gaussian_w2(np.zeros(d), np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(0, abs=1e-7)
    m = np.arange(d, dtype=float)
    assert gaussian_w2(np.zeros(d), np.eye(d), m, np.eye(d)) == pytest.approx(np.linalg.norm(m))
    # scalar covariances a I, b I: sqrt(d) |sqrt(a) - sqrt(b)|
    assert gaussian_w2(np.zeros(d), 4 * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(2.0)
    # commuting diagonals: the per-axis root differences
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 1.0, 1.0])
    ref = np.sqrt(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert gaussian_w2(np.zeros(d), np.diag(a), np.zeros(d), np.diag(b)) == pytest.approx(ref)
    with pytest.raises(ValueError, match="covariances"):
        gaussian_w2(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


@pytest.mark.parametrize("seed", range(4))
def test_gelbrich_below_and_triangle_above_the_exact_w2(seed: int) -> None:
    """For two point sets (their empirical laws): W2 of their moments' Gaussians <= W2 <=
    sqrt(tr S) + sqrt(E|Y - m|^2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 3)) * [1.0, 0.3, 2.0]
    y = rng.exponential(size=(300, 3)) + rng.standard_normal(3)
    exact = w2(x, y)
    mx, Sx = sample_moments(x)
    assert gaussian_w2(mx, Sx, *sample_moments(y)) <= exact * (1 + 1e-9)
    assert trivial_upper(mx, Sx, y) >= exact


def test_law_moments_match_large_samples() -> None:
    for base, params in (("gaussian", {"var": 0.2}), ("four_clusters", {"std": 0.1})):
        mean, cov = law_moments(base, 5, **params)
        m, S = sample_moments(make_highdim(base, 40000, 5, seed=2, **params))
        np.testing.assert_allclose(m, mean, atol=0.01)
        np.testing.assert_allclose(S, cov, atol=0.01)


def test_moments_group_columns_and_a_diverged_model() -> None:
    gid = GroupId("dimsweep", "gaussian-d3", "none", 4)
    mean, cov = law_moments("gaussian", 3, var=0.1)
    rng = np.random.default_rng(0)
    q0 = np.sqrt(0.1) * rng.standard_normal((2, 500, 3))
    q0[1, 0, 0] = np.inf
    samples = {"samples": q0, "seeds": np.array([0, 1]), "epochs": np.array([9, 9])}
    df = moments_group(gid, samples, np.sqrt(0.1) * rng.standard_normal((800, 3)), (mean, cov))
    assert list(df["seed"]) == [0, 1] and df["dataset"].eq("gaussian-d3").all()
    assert df["w2_gelbrich"].iloc[0] < 0.1 and np.isinf(df["w2_gelbrich"].iloc[1])
    assert df["w2_trivial"].iloc[0] > df["w2_gelbrich"].iloc[0]
    assert df["w2_gelbrich_floor"].nunique() == 1


# ----------------------------------------------------------------------------- L_s clouds
@pytest.fixture(scope="module")
def group3(tmp_path_factory: pytest.TempPathFactory) -> RunGroup:
    """Two models trained a few epochs on a 3-D Gaussian, through the checkpoints file."""
    data = make_highdim("gaussian", 200, 3, seed=1, var=0.1)
    cfg = TrainConfig(epochs=3, batch_size=50, maximize_epochs=1, dense_epochs=1, n_checkpoints=3)
    path = tmp_path_factory.mktemp("g3") / "checkpoints.pt"
    save_checkpoints(train(data, SCHED, [0, 1], "none", config=cfg), path)
    ck = load_checkpoints(path, "final")
    return RunGroup(GroupId("dimsweep", "gaussian-d3", "none", SCHED.T), ck, data, SCHED, "data", 0)


def test_checkpoints_keep_the_input_width(group3: RunGroup) -> None:
    assert group3.model.dim == 3
    losses = loss_group(group3, draws=1)  # evaluates the models in chunks: the width survives
    assert len(losses) == 2 and (losses["jsm"] <= losses["jdsm"]).all()


def test_cloud_lipschitz_is_the_max_over_its_clouds(group3: RunGroup) -> None:
    df = cloud_lipschitz_group(group3, n_points=40, n_paths=30, law={"var": 0.1})
    assert len(df) == 2 * SCHED.T
    parts = df[["L_data", "L_path", "L_between"]].to_numpy()
    np.testing.assert_array_equal(df["L_s"].to_numpy(), parts.max(axis=1))
    np.testing.assert_allclose(
        df.groupby("seed")["L_law"].apply(list).iloc[0],
        law_lipschitz("gaussian", SCHED.alpha_bars, var=0.1),
    )
    again = cloud_lipschitz_group(group3, n_points=40, n_paths=30, law={"var": 0.1})
    pd.testing.assert_frame_equal(df, again)  # seeded streams: the same bytes


def test_cloud_data_estimate_is_the_max_at_the_noised_points(group3: RunGroup) -> None:
    """L_data(i) is the max of lambda_max of the model's score Jacobian at the data noised to
    step i, drawn from the stream "lipschitz_region" (subset first, then the noise)."""
    df = cloud_lipschitz_group(group3, n_points=25, n_paths=5, law={})
    gen = torch_generator(group3.seed, "lipschitz_region")
    idx = torch.randperm(len(group3.train), generator=gen)[:25].sort().values
    xt = noised_points(group3.train[idx.numpy()], group3.schedule, 1, gen).xt
    model, sch = group3.model, group3.schedule
    for i in range(sch.T):

        def field(x: torch.Tensor, i: int = i) -> torch.Tensor:
            t = torch.full(x.shape[:2], i, dtype=torch.long)
            return sch.eps_to_score(model(x.float(), t).double(), i)

        ref = jacobian_sym_eigs(field, xt[i], n_fields=2).amax(1).numpy()
        np.testing.assert_allclose(df[df["step"] == i]["L_data"].to_numpy(), ref, rtol=1e-12)


def test_embedded_paper_grid() -> None:
    g = embedded_paper_grid(5)
    assert g.shape == (100, 5) and (g[:, 2:] == 0).all() and float(g[:, :2].max()) == 0.9


def test_cloud_refuses_a_planar_group(group3: RunGroup) -> None:
    planar = dataclasses.replace(group3, id=GroupId("dimsweep", "gaussian", "none", 4))
    with pytest.raises(ValueError, match="not a data set of the dimension sweep"):
        cloud_lipschitz_group(planar, 5, 5, law={})


# ----------------------------------------------------------------------------- table, claim
def _tables(w2s: dict[tuple[str, int], float], log_bound: float = 0.0):
    """Synthetic bound, L_s and moments tables: one final model per (data set, seed)."""
    rows, lips, moms = [], [], []
    for (name, seed), w in w2s.items():
        key = dict(experiment="dimsweep", dataset=name, regularizer="none", T=2, seed=seed, epoch=5)
        rows.append(key | dict(w2=w, w2_floor=0.5, jdsm=1.0, dsm_floor=0.9, log_intercept=0.1,
                               log_bound=log_bound, violation=np.log(w) > log_bound))  # fmt: skip
        lips += [key | dict(step=i, L_s=i - 1.0, L_exact=5.0, L_law=-1.0) for i in range(2)]
        moms.append(key | dict(w2_gelbrich=0.1, w2_gelbrich_floor=0.05, w2_trivial=2.0))
    return pd.DataFrame(rows), pd.DataFrame(lips), pd.DataFrame(moms)


def test_dimsweep_runs_and_summary() -> None:
    w2s = {("gaussian-d2", 0): 0.8, ("gaussian-d2", 1): 0.6, ("gaussian-d8", 0): 0.52,
           ("four_clusters-d2", 0): 0.9}  # fmt: skip
    runs = dimsweep_runs(*_tables(w2s))
    assert set(runs["d"]) == {2, 8} and (runs["L_s_max"] == 0.0).all()
    assert runs["informative"].all()  # bound e^0 = 1 < the triangle bound 2
    assert runs["tightness"].to_numpy() == pytest.approx(-np.log(runs["w2"].to_numpy()))
    s = dimsweep_summary(runs)
    assert list(zip(s["base"], s["d"], strict=True)) == [
        ("gaussian", 2),
        ("gaussian", 8),
        ("four_clusters", 2),
    ]
    assert s.loc[0, "w2"] == pytest.approx(0.7) and s.loc[0, "runs"] == 2
    assert dimsweep_summary(runs.iloc[:0]).empty


def test_claim_counts_violations_and_finds_the_floor() -> None:
    w2s = {("gaussian-d2", 0): 0.8, ("gaussian-d4", 0): 0.52, ("gaussian-d8", 0): 0.51}
    b, L, m = _tables(w2s)
    row = claim_dimsweep(b, dimsweep_runs(b, L, m))
    assert row["verdict"] == "holds" and row["claim"] == "bound_holds_every_d"
    assert "0 of 3 checkpoints above" in row["evidence"]
    assert f"below {AT_FLOOR}" in row["criterion"]
    assert "W2 at its floor in: gaussian d = 4, 8" in row["evidence"]  # 0.52 / 0.5 < 1.1
    assert "triangle bound) in: gaussian d = 2, 4, 8" in row["evidence"]
    b, L, m = _tables(w2s, log_bound=np.log(0.6))
    row = claim_dimsweep(b, dimsweep_runs(b, L, m))
    assert row["verdict"] == "does not hold" and "1 of 3 checkpoints above" in row["evidence"]


def test_summary_of_the_committed_run_is_consistent() -> None:
    """The committed dimsweep.csv: every configured (data set, d) with all its seeds."""
    path = Path(__file__).resolve().parents[1] / "results" / "tables" / "dimsweep.csv"
    if not path.is_file():
        pytest.skip("no committed results")
    import yaml

    cfg = yaml.safe_load((path.parents[2] / "config.yaml").read_text())["experiments"]["dimsweep"]
    s = pd.read_csv(path)
    assert sorted(zip(s["base"], s["d"], strict=True)) == sorted(
        (b, d) for b in cfg["datasets"] for d in cfg["dims"]
    )
    assert (s["runs"] == len(cfg["seeds"])).all()
    assert (s["n_informative"] <= s["runs"]).all() and (s["w2_floor"] > 0).all()
    assert s["tightness"].to_numpy() == pytest.approx(np.log(s["bound"] / s["w2"]), abs=0.5)
