#!/usr/bin/env bash
# Create .venv with every dependency (CPU build of torch 2.13.0) and the scorew2 package.
# Idempotent: a second call only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0 -e '.[test]'
