"""Tests of scorew2.train: batched training equals separate runs, J_DSM falls, resume is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.model import ScoreNet
from scorew2.schedule import make_schedule
from scorew2.train import (
    DivergenceError,
    StateFileError,
    TrainConfig,
    checkpoint_epochs,
    train,
)

torch.set_num_threads(1)
SCHED = make_schedule("sigmoid", 10, 1e-5, 1e-2)


def _data(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.choice(np.array([[0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]]), size=n)
    return centres + 0.05 * rng.normal(size=(n, 2))


def _cfg(**kw) -> TrainConfig:
    base = {
        "epochs": 6,
        "batch_size": 64,
        "maximize_epochs": 0,
        "dense_epochs": 2,
        "n_checkpoints": 5,
        "save_every": 2,
    }
    base.update(kw)
    return TrainConfig(**base)


def _jdsm(state, regularizer: str, data: np.ndarray, n_mc: int = 4) -> np.ndarray:
    """Monte-Carlo J_DSM per model (fixed noise): 1/2 sum_i b_i/(1-abar_i) E||eps_th - eps||^2."""
    net = ScoreNet.from_state(state, SCHED.T, regularizer).eval()
    m = net.n_models
    g = torch.Generator().manual_seed(123)
    x0 = torch.as_tensor(data, dtype=torch.float64)
    ab = SCHED.alpha_bars
    total = np.zeros(m)
    with torch.no_grad():
        for i in range(SCHED.T):
            for _ in range(n_mc):
                eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
                xt = (np.sqrt(ab[i]) * x0 + np.sqrt(1 - ab[i]) * eps).float()
                xt = xt.expand(m, -1, -1)
                t = torch.full(xt.shape[:2], i, dtype=torch.long)
                err = (net(xt, t) - eps.float()).square().sum(-1).mean(1).double().numpy()
                total += 0.5 * SCHED.betas[i] / (1 - ab[i]) * err / n_mc
    return total


def test_checkpoint_epochs_schedule():
    c = checkpoint_epochs(1000, 20, 100)
    assert len(c) == 100 and c[0] == 0 and c[-1] == 1000
    assert c[:21] == list(range(21))
    assert (np.diff(c) > 0).all()
    gaps = np.diff(c[21:])
    assert gaps[-1] > 10 * gaps[0]  # log-spaced: gaps grow
    assert checkpoint_epochs(10, 20, 100) == list(range(11))
    assert checkpoint_epochs(50, 5, 200) == list(range(51))
    c2 = checkpoint_epochs(1000, 20, 150)
    assert len(c2) == 150 and len(set(c2)) == 150
    with pytest.raises(ValueError, match="n_checkpoints"):
        checkpoint_epochs(1000, 20, 10)


@pytest.mark.parametrize("reg", ["none", "spectral_norm"])
def test_batched_training_equals_separate_runs(reg):
    data = _data()
    cfg = _cfg(epochs=3, maximize_epochs=1)
    seeds = [5, 6, 7]
    joint = train(data, SCHED, seeds, reg, config=cfg)
    assert joint.loss_history.shape == (3, 3)
    assert joint.epochs == checkpoint_epochs(3, 2, 5)
    for m, s in enumerate(seeds):
        alone = train(data, SCHED, [s], reg, config=cfg)
        np.testing.assert_allclose(joint.loss_history[:, m], alone.loss_history[:, 0], rtol=1e-5)
        for key, val in alone.states[-1].items():
            torch.testing.assert_close(joint.states[-1][key][m : m + 1], val, rtol=1e-4, atol=1e-5)
    # different seeds give different models
    assert not np.allclose(joint.loss_history[:, 0], joint.loss_history[:, 1])


def test_mixed_regularizers_train_each_model_as_alone(tmp_path):
    """The seeds of every regulariser in one batch: each model's trajectory is its own."""
    data = _data()
    cfg = _cfg(epochs=4, maximize_epochs=1, weight_clip=0.05)
    regs = ["none"] * 2 + ["spectral_norm"] * 2 + ["weight_clip"] * 2
    seeds = [5, 6] * 3
    path = tmp_path / "state.pt"
    train(data, SCHED, seeds, regs, config=cfg, state_path=path, stop_at=2)
    joint = train(data, SCHED, seeds, regs, config=cfg, state_path=path)  # resumed
    assert joint.loss_history.shape == (4, 6)
    for reg in ("none", "spectral_norm", "weight_clip"):
        part = joint.select(reg)
        alone = train(data, SCHED, [5, 6], reg, config=cfg)
        assert part.seeds == [5, 6] and part.regularizer == reg
        np.testing.assert_allclose(part.loss_history, alone.loss_history, rtol=1e-5)
        for a, b in zip(part.states, alone.states, strict=True):
            assert a.keys() == b.keys()
            for key, val in b.items():
                torch.testing.assert_close(a[key], val, rtol=1e-4, atol=1e-5)
        part.model()  # a plain one-regulariser model
    assert joint.select("weight_clip").states[-1]["flat"].abs().max() <= 0.05
    assert joint.select("none").states[-1]["flat"].abs().max() > 0.05
    with pytest.raises(ValueError, match="select"):
        joint.model()
    with pytest.raises(ValueError, match="regularizer"):
        train(data, SCHED, [1, 2], ["none"], config=cfg)
    with pytest.raises(ValueError, match="contiguous"):
        train(data, SCHED, [1, 1, 2], ["none", "weight_clip", "none"], config=cfg)
    with pytest.raises(ValueError, match="seeds"):
        train(data, SCHED, [1, 1], ["none", "none"], config=cfg)


def test_training_lowers_jdsm_and_maximise_raises_it():
    """Gaussian data N(0, s^2 I): the optimum eps = sqrt(1-abar) x / v (v = abar s^2 + 1 - abar)
    leaves the closed-form DSM floor 1/2 sum_i b_i/(1-abar_i) d (1 - (1-abar_i)/v_i)."""
    s = 0.3
    data = np.random.default_rng(0).normal(size=(400, 2)) * s
    ab = SCHED.alpha_bars
    floor = 0.5 * np.sum(SCHED.betas / (1 - ab) * 2 * (1 - (1 - ab) / (ab * s * s + 1 - ab)))
    res = train(
        data,
        SCHED,
        [0, 1],
        "none",
        config=_cfg(epochs=20, batch_size=32, dense_epochs=3, n_checkpoints=6),
    )
    j0 = _jdsm(res.states[0], "none", data)
    j_end = _jdsm(res.states[-1], "none", data)
    assert (j0 > floor + 1).all()
    assert (j_end - floor < 0.5 * (j0 - floor)).all(), (floor, j0, j_end)
    assert res.loss_history[-1].mean() < res.loss_history[0].mean()

    up = train(
        data,
        SCHED,
        [0, 1],
        "none",
        config=_cfg(epochs=3, batch_size=32, maximize_epochs=3, dense_epochs=3),
    )
    j_up = _jdsm(up.states[-1], "none", data)
    assert (j_up > 5 * j0).all(), (j0, j_up)
    assert (np.diff(up.loss_history, axis=0) > 0).all()


def test_weight_clip_training_keeps_parameters_bounded():
    res = train(_data(), SCHED, [1], "weight_clip", config=_cfg(epochs=2, weight_clip=0.05))
    assert res.states[-1]["flat"].abs().max() <= 0.05
    assert (res.states[-1]["flat"].abs() == 0.05).any()


@pytest.mark.parametrize("reg", ["spectral_norm", "weight_clip"])
def test_resume_is_bitwise_identical(tmp_path, reg):
    data = _data()
    cfg = _cfg(epochs=6, maximize_epochs=2)
    full = train(data, SCHED, [3, 4], reg, config=cfg)
    path = tmp_path / "run" / "state.pt"
    part = train(data, SCHED, [3, 4], reg, config=cfg, state_path=path, stop_at=3)
    assert path.exists() and part.loss_history.shape == (3, 2)
    resumed = train(data, SCHED, [3, 4], reg, config=cfg, state_path=path)
    assert resumed.epochs == full.epochs
    np.testing.assert_array_equal(resumed.loss_history, full.loss_history)
    for a, b in zip(resumed.states, full.states, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # a finished state file returns the result without training
    again = train(data, SCHED, [3, 4], reg, config=cfg, state_path=path)
    assert torch.equal(again.states[-1]["flat"], full.states[-1]["flat"])
    assert not list(path.parent.glob(".*tmp*"))


def test_bad_state_files_raise_naming_the_file(tmp_path):
    data = _data(100)
    cfg = _cfg(epochs=2)
    path = tmp_path / "state.pt"
    train(data, SCHED, [1], "none", config=cfg, state_path=path, stop_at=1)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StateFileError, match=r"state\.pt.*cannot be read"):
        train(data, SCHED, [1], "none", config=cfg, state_path=path)
    path.write_bytes(b"not a state file")
    with pytest.raises(ValueError, match=r"state\.pt"):
        train(data, SCHED, [1], "none", config=cfg, state_path=path)
    path.write_bytes(raw)
    with pytest.raises(StateFileError, match=r"another run.*seeds"):
        train(data, SCHED, [2], "none", config=cfg, state_path=path)
    with pytest.raises(StateFileError, match="data_sha256"):
        train(data + 1, SCHED, [1], "none", config=cfg, state_path=path)


def test_divergence_names_epoch_step_and_model():
    data = _data(100)
    data[5] = 1e30  # finite, but the squared error overflows float32
    with pytest.raises(DivergenceError, match=r"epoch 1 .*step 0 .*model index 0") as info:
        train(data, SCHED, [1], "none", config=_cfg(epochs=1, batch_size=100))
    assert isinstance(info.value, RuntimeError) and info.value.model == 0


def test_maximise_phase_is_allowed_to_grow_large():
    res = train(
        _data(200),
        SCHED,
        [2],
        "none",
        config=_cfg(epochs=8, batch_size=32, maximize_epochs=8, lr=1e-2),
    )
    assert np.isfinite(res.loss_history).all()
    assert res.loss_history[-1, 0] > 1e3 * res.loss_history[0, 0]


def test_bad_arguments():
    data = _data(50)
    with pytest.raises(ValueError, match="regularizer"):
        train(data, SCHED, [1], "l2", config=_cfg())
    with pytest.raises(ValueError, match="device"):
        train(data, SCHED, [1], config=_cfg(), device="tpu")
    with pytest.raises(ValueError, match="seeds"):
        train(data, SCHED, [1, 1], config=_cfg())
    with pytest.raises(ValueError, match="seeds"):
        train(data, SCHED, [-1], config=_cfg())
    with pytest.raises(ValueError, match="data"):
        train(data[:, :1].ravel(), SCHED, [1], config=_cfg())
    with pytest.raises(ValueError, match="stop_at"):
        train(data, SCHED, [1], config=_cfg(), stop_at=99)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)


def test_device_auto_on_cpu_gives_same_result():
    if torch.cuda.is_available():
        pytest.skip("auto picks cuda here")
    data = _data(100)
    a = train(data, SCHED, [1], config=_cfg(epochs=1))
    b = train(data, SCHED, [1], config=_cfg(epochs=1), device="auto")
    assert torch.equal(a.states[-1]["flat"], b.states[-1]["flat"])
    net = a.model()
    assert net.n_models == len(a.states) and not net.training
