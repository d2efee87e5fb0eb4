#!/usr/bin/env bash
# Create .venv with exactly the locked dependency set (requirements.lock: versions and hashes,
# torch 2.13.0 CPU build) and the scorew2 package. Idempotent: a second call only checks that
# everything is installed. Refresh the lock with lock.sh.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --require-hashes -r requirements.lock
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
