"""Faults of one machine: a training job killed with SIGKILL resumes from its state file and
ends bit-identical; a second Snakemake on the same results is refused while the first runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from scorew2.io import CorruptFileError, load_torch

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "1"]
EPOCHS = 300


def write_config(tmp_path: Path, results: Path) -> Path:
    cfg = yaml.safe_load((REPO / "tests" / "smoke" / "config.yaml").read_text())
    cfg["results_dir"] = str(results)
    cfg["datasets"] = {"moons": {"n": 2000}}
    cfg["training"].update(epochs=EPOCHS, n_checkpoints=12, batch_size=64)
    exp = cfg["experiments"]["loglog"]
    exp.update(datasets=["moons"], regularizers=["weight_clip"])
    cfg["experiments"] = {"loglog": exp}
    path = tmp_path / f"{results.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(config: Path, *args: str) -> None:
    proc = subprocess.run(
        [*SNAKEMAKE, *args, "--configfile", str(config)], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def state_epoch(path: Path) -> int:
    try:
        return int(load_torch(path)["epoch"])
    except (FileNotFoundError, CorruptFileError, KeyError):
        return -1


def test_sigkill_during_training_resumes_bit_identically(tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cfg_killed, cfg_clean = write_config(tmp_path, killed), write_config(tmp_path, clean)
    trained = "runs/loglog/moons/train_T10"
    target = killed / trained / "checkpoints.pt"
    state = killed / trained / "train_state.pt"

    proc = subprocess.Popen(
        [*SNAKEMAKE, str(target), "--configfile", str(cfg_killed)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while state_epoch(state) < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = state_epoch(state)
    if target.exists() or not 0 < at_kill < EPOCHS:
        pytest.fail(f"the kill did not land inside training (state epoch {at_kill})")

    run(cfg_killed, "--unlock")
    run(cfg_killed, str(target))  # resumes from the state file
    run(cfg_clean, str(clean / trained / "checkpoints.pt"))
    a, b = load_torch(target), load_torch(clean / trained / "checkpoints.pt")
    assert a["epochs"] == b["epochs"]
    for sa, sb in zip(a["states"], b["states"], strict=True):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
    assert (a["loss_history"] == b["loss_history"]).all()
    assert not state.exists()  # removed once the checkpoints file is complete

    # and what follows from the checkpoints is identical too
    w2_rel = "runs/loglog/moons/weight_clip/T10/w2.csv"
    run(cfg_killed, str(killed / w2_rel))
    run(cfg_clean, str(clean / w2_rel))
    assert (killed / w2_rel).read_bytes() == (clean / w2_rel).read_bytes()


def test_a_second_run_on_the_same_results_is_refused_and_the_first_completes(
    tmp_path: Path,
) -> None:
    """The first run is stopped (SIGSTOP) once training is under way, so it holds its lock
    however fast training is; the second run must be refused, and the first, continued,
    must complete."""
    results = tmp_path / "results"
    cfg = write_config(tmp_path, results)
    trained = results / "runs/loglog/moons/train_T10"
    first = subprocess.Popen(
        [*SNAKEMAKE, str(trained / "checkpoints.pt"), "--configfile", str(cfg)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while state_epoch(trained / "train_state.pt") < 1 and time.monotonic() < deadline:
        assert first.poll() is None, "the first run ended before training was under way"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        assert first.poll() is None, "the first run was over before it could be paused"
        second = subprocess.run(
            [*SNAKEMAKE, "--configfile", str(cfg)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stdout + second.stderr
    assert first.returncode == 0, err[-3000:]
    done = load_torch(trained / "checkpoints.pt")
    assert done["epochs"][-1] == EPOCHS
    assert not (trained / "train_state.pt").exists()
