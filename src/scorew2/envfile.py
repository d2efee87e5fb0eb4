"""The conda environment of the workflow's rules, generated from ``requirements.lock``.

``setup.sh`` installs exactly the locked set (``pip install --require-hashes``); the conda
environment that the rules name for ``--use-conda`` is written from the same pins, so there is
no second list of versions. ``python -m scorew2.generated envfile`` rewrites it, ``--check``
exits 1 when it is stale (a test runs it).
"""

from __future__ import annotations

import re

__all__ = ["conda_env", "locked_versions"]

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)")
_HEADER = """\
# GENERATED from requirements.lock by `python -m scorew2.generated envfile` (do not edit):
# the software of every rule, for `snakemake --use-conda` on machines that have conda. What
# this project runs and tests is setup.sh, which installs the same pins with their hashes.
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def locked_versions(lock: str) -> dict[str, str]:
    """Package -> exact version, from the text of a pip requirements lock."""
    out = {}
    for line in lock.splitlines():
        m = _PIN.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    if not out:
        raise ValueError("requirements.lock: no pinned requirement found")
    return out


def conda_env(lock: str) -> str:
    """The conda environment file: python 3.11 and every locked pin (torch's local version
    label ``+cpu`` dropped: conda's pip takes it from PyPI), then this package."""
    pins = locked_versions(lock)
    lines = [f"      - {name}=={version.split('+')[0]}" for name, version in sorted(pins.items())]
    return _HEADER + "\n".join([*lines, "      - -e ../.."]) + "\n"
