"""What produced a result: the config and its hash, library versions, the git commit and the
machine (processor, cores, the vector extensions torch uses)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGES",
    "config_hash",
    "git_commit",
    "lock_hash",
    "machine",
    "provenance",
    "versions",
]

PACKAGES = ("scorew2", "torch", "pot", "numpy", "scipy", "pandas", "snakemake", "seaborn")


def _content(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config without ``results_dir``: where the results go does not change them."""
    return {k: v for k, v in config.items() if k != "results_dir"}


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the config (less results_dir) as canonical JSON."""
    blob = json.dumps(_content(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(repo: str | Path = ".") -> str:
    """The checked-out commit, with ``-dirty`` when tracked source files differ from it.

    Only code is considered (src, workflow, Snakefile, config.yaml), so regenerated results
    in the tree do not mark the commit dirty. Returns ``unknown`` outside a git checkout.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "src",
                "workflow",
                "Snakefile",
                "config.yaml",
                "requirements.lock",
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """The machine that made the numbers: processor model, core count, the vector extensions
    torch's CPU kernels use (``torch.backends.cpu.get_cpu_capability()``), OS and Python."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    model = info.get("model name") or platform.processor() or "unknown"
    if "cpu family" in info:  # a virtual machine may name no model: family/model identify it
        model += f" (family {info['cpu family']}, model {info.get('model', '?')}"
        model += f", {float(info.get('cpu MHz', 'nan')):.0f} MHz)"
    try:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    except ImportError:
        capability = "unknown (torch not installed)"
    return {
        "processor": model,
        "cores": os.cpu_count(),
        "torch_cpu_capability": capability,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def lock_hash(repo: str | Path = ".") -> str:
    """SHA-256 (first 16 hex digits) of ``requirements.lock``, the installed set of setup.sh."""
    path = Path(repo) / "requirements.lock"
    if not path.is_file():
        return "no lock file"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def provenance(config: Mapping[str, Any], repo: str | Path = ".") -> dict[str, Any]:
    """The record written beside every table: config, its hash, versions, the lock's hash,
    commit, machine."""
    return {
        "config": _content(config),
        "config_hash": config_hash(config),
        "versions": versions(),
        "lock_hash": lock_hash(repo),
        "git_commit": git_commit(repo),
        "machine": machine(),
    }
