"""Bad configuration values are refused with a message naming the key and the allowed values."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scorew2.config import main, read_config, validate_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    cfg = copy.deepcopy(DEFAULT)
    change(cfg)
    return cfg


def test_default_and_smoke_configs_are_valid() -> None:
    cfg = validate_config(DEFAULT)
    assert cfg["training"]["epochs"] == 1000
    smoke = validate_config(yaml.safe_load((REPO / "tests/smoke/config.yaml").read_text()))
    assert smoke["training"]["lr"] == pytest.approx(1e-3)  # filled from the schema default


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["experiments"]["loglog"]["datasets"].append("mnist"),
            ["experiments.loglog.datasets[3]", "'mnist'", "four_clusters", "swiss_roll"],
        ),
        (
            lambda c: c["experiments"]["loglog"].__setitem__("regularizers", ["dropout"]),
            ["experiments.loglog.regularizers[0]", "none", "spectral_norm", "weight_clip"],
        ),
        (lambda c: c["training"].__setitem__("epochs", 0), ["training.epochs", "minimum of 1"]),
        (lambda c: c["training"].__setitem__("epochs", -5), ["training.epochs", "minimum of 1"]),
        (lambda c: c["experiments"]["tsweep"].__setitem__("T", [0, 10]), ["tsweep.T[0]"]),
        (
            lambda c: c["experiments"]["tsweep"]["schedule"].__setitem__("beta_end", 1e-6),
            ["experiments.tsweep.schedule", "beta_end", "below beta_start"],
        ),
        (lambda c: c["experiments"]["loglog"].__setitem__("seeds", []), ["loglog.seeds", "empty"]),
        (lambda c: c["training"].__setitem__("lr", "fast"), ["training.lr", "not of type"]),
        (lambda c: c["training"].__setitem__("epochs", 10.5), ["training.epochs", "integer"]),
        (
            lambda c: c["experiments"].__setitem__("fig5", c["experiments"]["loglog"]),
            ["experiments.fig5", "'kind' is a required property"],
        ),
        (
            lambda c: c["experiments"]["tsweep"].__setitem__("kind", "fig5"),
            ["experiments.tsweep.kind", "'fig5' is not allowed", "loglog, tsweep"],
        ),
        (
            lambda c: c["experiments"].__setitem__("a/b", dict(c["experiments"]["loglog"])),
            ["experiments", "'a/b' does not match"],
        ),
        (lambda c: c.__setitem__("devcie", "cpu"), ["'devcie' was unexpected"]),
        (lambda c: c.__setitem__("device", "tpu"), ["device", "auto, cpu, cuda"]),
        (
            lambda c: c["evaluation"].__setitem__("w2_points", 10**6),
            ["evaluation.w2_points", "exceeds datasets.four_clusters.n"],
        ),
        (
            lambda c: c["training"].__setitem__("maximize_epochs", 2000),
            ["training.maximize_epochs", "exceeds"],
        ),
        (
            lambda c: c["experiments"]["tsweep"].__setitem__(
                "schedule",
                {"kind": "quadratic", "beta_start": 0.23046875, "beta_end": 0.9999999999999998},
            ),
            ["experiments.tsweep.schedule: at T = 10", "open interval (0, 1)"],
        ),
        (
            lambda c: c["experiments"]["robustness"].pop("perturbations"),
            ["experiments.robustness", "'perturbations' is a required property"],
        ),
        (
            lambda c: c["experiments"]["robustness"].__setitem__("datasets", ["moons"]),
            ["experiments.robustness.datasets[0]", "'moons' is not allowed", "four_clusters"],
        ),
        (
            lambda c: c["experiments"]["robustness"]["perturbations"].__setitem__("mass", [1.5]),
            ["experiments.robustness.perturbations.mass[0]", "maximum of 1"],
        ),
        (
            lambda c: c["experiments"]["robustness"]["perturbations"].__setitem__("shift", [0]),
            ["experiments.robustness.perturbations.shift[0]", "less than or equal to the minimum"],
        ),
        (
            lambda c: c["experiments"]["robustness"]["perturbations"].__setitem__("spin", [1]),
            ["experiments.robustness.perturbations", "'spin' was unexpected", "mass, shift"],
        ),
        (
            lambda c: c["experiments"]["loglog"].__setitem__("perturbations", {"shift": [0.1]}),
            ["experiments.loglog.perturbations", "only a robustness experiment", "loglog"],
        ),
        (
            lambda c: c["experiments"]["loglog"].update(dims=[2, 4]),
            ["experiments.loglog.dims", "only a dimsweep experiment", "loglog"],
        ),
        (
            lambda c: c["experiments"]["dimsweep"].update(datasets=["moons"]),
            ["experiments.dimsweep.datasets"],
        ),
        (
            lambda c: c["experiments"]["dimsweep"].pop("dims"),
            ["experiments.dimsweep", "dims"],
        ),
        (
            lambda c: c["experiments"]["dimsweep"].update(dims=[1]),
            ["experiments.dimsweep.dims"],
        ),
    ],
)
def test_bad_values_are_refused(change: Callable[[dict], None], expected: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        validate_config(broken(change))
    for part in expected:
        assert part in str(err.value), (part, str(err.value))


def test_experiments_are_named_instances_of_a_kind() -> None:
    cfg = copy.deepcopy(DEFAULT)
    # blocks named after their kind need no `kind`; tsweep_authors names its own
    assert {n: e["kind"] for n, e in validate_config(cfg)["experiments"].items()} == {
        "loglog": "loglog",
        "tsweep": "tsweep",
        "tsweep_authors": "tsweep",
        "robustness": "robustness",
        "dimsweep": "dimsweep",
    }
    slow = copy.deepcopy(cfg["experiments"]["tsweep"])
    slow["kind"] = "tsweep"
    slow["schedule"]["beta_end"] = 0.01
    cfg["experiments"]["tsweep_slow"] = slow
    out = validate_config(cfg)
    assert out["experiments"]["tsweep_slow"]["kind"] == "tsweep"
    assert out["experiments"]["tsweep"]["schedule"]["beta_end"] == 0.1
    assert "kind" not in cfg["experiments"]["tsweep"]  # the caller's config is not changed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"training:\n  epochs: \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 20)"),
        (b"experiments: [\n", "not valid YAML"),
        (b"- a\n- b\n", "expected a mapping of keys, got a list"),
        (b"", "expected a mapping of keys, got an empty file"),
    ],
)
def test_unreadable_config_files_get_a_message(tmp_path: Path, raw: bytes, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    with pytest.raises(
        ValueError, match=re.escape(f"config file {path}: ") + ".*" + re.escape(expected)
    ):
        read_config(path)


def test_the_config_checker_names_each_bad_file(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  lr: .nan\n")
    assert main([str(REPO / "config.yaml"), str(tmp_path / "missing.yaml"), str(bad)]) == 1
    out = capsys.readouterr()
    assert "config.yaml: valid (5 experiments)" in out.out
    assert "missing.yaml: cannot be read (No such file or directory)" in out.err
    assert "training.lr: nan is not a finite number" in out.err
    assert main([str(REPO / "config.yaml")]) == 0
