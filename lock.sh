#!/usr/bin/env bash
# Refresh requirements.lock (exact versions and hashes of every dependency for Linux x86_64,
# Python 3.11, torch 2.13.0 CPU build) and the conda environment generated from it. Run after
# changing a dependency in pyproject.toml; commit both files. uv lives in a venv of its own
# (.lock-venv), so that .venv holds exactly the locked set.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .lock-venv/bin/uv ] || { python3 -m venv .lock-venv && .lock-venv/bin/pip install -q uv; }
echo "torch==2.13.0+cpu" > .torch-constraint.txt
trap 'rm -f .torch-constraint.txt' EXIT
# torch's CPU build is not on PyPI: it comes from the wheel folder this machine's pip uses
.lock-venv/bin/uv pip compile -q pyproject.toml --extra test --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --find-links "${TORCH_WHEELS:-/opt/wheels}" \
  --no-emit-find-links --no-header --constraint .torch-constraint.txt -o requirements.lock
sed -i 's#-c .torch-constraint.txt#torch CPU build pinned by lock.sh#' requirements.lock
PYTHONPATH=src .venv/bin/python -m scorew2.generated envfile  # setup.sh makes .venv
