"""What produced a result: the config and its hash, library versions and the git commit."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

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
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def provenance(config: Mapping[str, Any], repo: str | Path = ".") -> dict[str, Any]:
    """The record written beside every table: config, its hash, versions and commit."""
    return {
        "config": _content(config),
        "config_hash": config_hash(config),
        "versions": versions(),
        "git_commit": git_commit(repo),
    }
