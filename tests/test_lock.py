"""The installed set is the locked set, and the conda environment is generated from it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

from scorew2.envfile import conda_env, locked_versions
from scorew2.generated import main

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_package_is_locked_at_its_version() -> None:
    locked = {_norm(k): v for k, v in locked_versions(LOCK.read_text()).items()}
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    unlocked = set(installed) - set(locked) - {"pip", "scorew2"}
    assert not unlocked, f"installed but not in requirements.lock: {sorted(unlocked)}"
    wrong = {k: (installed.get(k), v) for k, v in locked.items() if installed.get(k) != v}
    assert not wrong, f"installed (found, locked) differ: {wrong}"


def test_lock_pins_every_requirement_with_hashes() -> None:
    text = LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    assert len(blocks) == len(locked_versions(text)) > 50
    assert all("--hash=sha256:" in b for b in blocks)
    assert locked_versions(text)["torch"] == "2.13.0+cpu"


def test_conda_env_is_generated_from_the_lock(tmp_path: Path) -> None:
    env = REPO / "workflow" / "envs" / "scorew2.yaml"
    assert main(["envfile", "--source", str(LOCK), "--target", str(env), "--check"]) == 0
    text = conda_env("numpy==2.4.6 \\\n    --hash=sha256:ab\ntorch==2.13.0+cpu \\\n")
    assert "      - numpy==2.4.6\n      - torch==2.13.0\n      - -e ../..\n" in text
    stale = tmp_path / "env.yaml"
    stale.write_text(text)
    assert main(["envfile", "--source", str(LOCK), "--target", str(stale), "--check"]) == 1
    with pytest.raises(ValueError, match="no pinned requirement"):
        locked_versions("# nothing\n")
