"""The pipeline's evaluation steps on a tiny trained run group: layout, consistency, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scorew2.bound import log_bound, log_intercept
from scorew2.bound_table import bound_group
from scorew2.checkpoints import Checkpoints, load_checkpoints, save_checkpoints
from scorew2.data import make_dataset
from scorew2.evaluate import RunGroup
from scorew2.evaluate.lipschitz import lipschitz_group
from scorew2.evaluate.losses import loss_group
from scorew2.evaluate.samples import sample_group
from scorew2.io import load_torch, save_torch
from scorew2.lipschitz import one_sided_lipschitz, region_grid
from scorew2.metrics import w2_group
from scorew2.runs import GroupId
from scorew2.schedule import make_schedule
from scorew2.score import noised_points
from scorew2.streams import torch_generator
from scorew2.train import TrainConfig, train
from scorew2.wasserstein import w2

torch.set_num_threads(1)
SCHED = make_schedule("sigmoid", 4, 1e-4, 0.2)
META = GroupId("loglog", "moons", "none", SCHED.T)


def run_group(ck: Checkpoints, data: np.ndarray, prior: str = "data", seed: int = 0) -> RunGroup:
    return RunGroup(META, ck, data, SCHED, prior, seed)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    data = make_dataset("moons", 200, seed=1)
    cfg = TrainConfig(epochs=4, batch_size=50, maximize_epochs=1, dense_epochs=2, n_checkpoints=4)
    result = train(data, SCHED, [3, 5], "none", config=cfg)
    path = tmp_path_factory.mktemp("group") / "checkpoints.pt"
    save_checkpoints(result, path)
    return path, data


def test_checkpoint_layout(group: tuple[Path, np.ndarray]) -> None:
    path, _ = group
    ck = load_checkpoints(path)
    saved = load_torch(path)
    K, S = len(saved["epochs"]), len(saved["seeds"])
    assert ck.model.n_models == K * S
    assert ck.seeds.tolist() == [3, 5] * K  # model k * S + s is seed s at checkpoint k
    assert ck.epochs.tolist() == np.repeat(saved["epochs"], S).tolist()
    final = load_checkpoints(path, "final")
    assert final.epochs.tolist() == [saved["epochs"][-1]] * S
    x = torch.zeros(S, 3, 2)
    t = torch.ones(S, 3, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(final.model(x, t), ck.model(x.repeat(K, 1, 1), t.repeat(K, 1))[-S:])
    with pytest.raises(ValueError, match="which"):
        load_checkpoints(path, "best")


def test_mixed_checkpoints_give_each_regularizer_its_models(tmp_path: Path) -> None:
    data = make_dataset("moons", 120, seed=1)
    cfg = TrainConfig(epochs=2, batch_size=40, maximize_epochs=1, dense_epochs=1, n_checkpoints=3)
    regs = ["none", "none", "spectral_norm", "spectral_norm"]
    mixed = train(data, SCHED, [3, 5, 3, 5], regs, config=cfg)
    save_checkpoints(mixed, tmp_path / "mixed.pt")
    for reg in ("none", "spectral_norm"):
        save_checkpoints(mixed.select(reg), tmp_path / f"{reg}.pt")
        a = load_checkpoints(tmp_path / "mixed.pt", "all", reg)
        b = load_checkpoints(tmp_path / f"{reg}.pt")
        assert a.model.regularizer == reg and a.seeds.tolist() == b.seeds.tolist() == [3, 5] * 3
        for key, val in b.model.state_dict().items():
            assert torch.equal(a.model.state_dict()[key], val), key
    with pytest.raises(ValueError, match="weight_clip"):
        load_checkpoints(tmp_path / "mixed.pt", "all", "weight_clip")
    with pytest.raises(ValueError, match="several regularizers"):
        load_checkpoints(tmp_path / "mixed.pt")


def test_samples_w2_and_floor(group: tuple[Path, np.ndarray]) -> None:
    path, data = group
    ck = load_checkpoints(path)
    out = sample_group(run_group(ck, data), n_points=50)
    assert out["samples"].shape == (ck.model.n_models, 50, 2)
    again = sample_group(run_group(ck, data), n_points=50)
    np.testing.assert_array_equal(out["samples"], again["samples"])
    fresh = make_dataset("moons", 200, seed=2)
    df = w2_group(META, out, fresh)
    assert df["w2_floor"].iloc[0] == pytest.approx(w2(out["ref"], fresh[:50]), rel=1e-12)
    assert df["w2"].iloc[-1] == pytest.approx(w2(out["ref"], out["samples"][-1]), rel=1e-12)
    assert (df["w2_T"] == 0).all() and df["w2_p0_prior"].isna().all()
    gauss = sample_group(run_group(ck, data, "gaussian"), n_points=50)
    dg = w2_group(META, gauss, fresh)
    assert dg["w2_T"].iloc[0] == pytest.approx(w2(gauss["pT"], gauss["xT"]), rel=1e-12)


def test_nonfinite_samples_stop_the_step(group: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, data = group
    saved = load_torch(path)
    saved["states"][-1]["flat"][1] = float("nan")  # seed 5 at the final epoch
    bad = tmp_path / "checkpoints.pt"
    save_torch(saved, bad)
    with pytest.raises(FloatingPointError, match=rf"seed 5 at epoch {saved['epochs'][-1]}"):
        sample_group(run_group(load_checkpoints(bad), data), n_points=20)


def test_losses_and_lipschitz_are_consistent(group: tuple[Path, np.ndarray]) -> None:
    path, data = group
    ck = load_checkpoints(path)
    losses = loss_group(run_group(ck, data), draws=1)
    assert (losses["jsm"] <= losses["jdsm"]).all()
    assert losses["dsm_floor"].nunique() == 1
    lips = lipschitz_group(run_group(ck, data), grid=6, n_paths=30)
    assert len(lips) == ck.model.n_models * SCHED.T
    # the batched L_grid equals the single-field estimator on the same region
    m, i = 3, 2
    region = region_grid(
        noised_points(data, SCHED, 1, torch_generator(0, "lipschitz_region")).xt[i], 6
    )
    sd = np.sqrt(1 - SCHED.alpha_bars[i])

    def field(x: torch.Tensor) -> torch.Tensor:
        xm = torch.zeros(ck.model.n_models, len(x), 2, dtype=torch.float32)
        xm[m] = x.float()
        t = torch.full(xm.shape[:2], i, dtype=torch.long)
        return -ck.model(xm, t)[m].double() / sd

    row = lips[
        (lips["seed"] == ck.seeds[m]) & (lips["epoch"] == ck.epochs[m]) & (lips["step"] == i)
    ]
    single = one_sided_lipschitz(field, region, method="jacobian")
    assert float(row["L_grid"].iloc[0]) == pytest.approx(single, rel=1e-5)


def test_bound_table(group: tuple[Path, np.ndarray]) -> None:
    path, data = group
    ck = load_checkpoints(path)
    samples = sample_group(run_group(ck, data), n_points=40)
    w2s = w2_group(META, samples, make_dataset("moons", 200, seed=2))
    losses = loss_group(run_group(ck, data), draws=1)
    lips = lipschitz_group(run_group(ck, data), grid=5, n_paths=30)
    b = bound_group(w2s, losses, lips, SCHED)
    assert len(b) == ck.model.n_models
    r = b.iloc[-1]
    L = lips[(lips["seed"] == r["seed"]) & (lips["epoch"] == r["epoch"])].sort_values("step")
    assert r["log_intercept"] == pytest.approx(log_intercept(SCHED.betas, L["L_s"]))
    assert r["log_bound"] == pytest.approx(log_bound(np.log(r["jdsm"]), SCHED.betas, L["L_s"]))
    assert bool(r["violation"]) == bool(np.log(r["w2"]) > r["log_bound"])
    with pytest.raises(ValueError, match="do not cover the same checkpoints"):
        bound_group(w2s.iloc[:-1], losses, lips, SCHED)
    with pytest.raises(ValueError, match="steps"):
        bound_group(w2s, losses, lips[lips["step"] < 2], SCHED)
    assert isinstance(b, pd.DataFrame)
