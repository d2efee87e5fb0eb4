#!/usr/bin/env bash
# Mutation testing of the mathematics: mutmut over the modules and tests named in pyproject's
# [tool.mutmut], then the per-module report (tests/mutation/report.md). Not part of the CI
# test run (it takes tens of minutes: the report says how long); run it after changing one of
# those modules or their tests:   bash tests/mutation/run.sh ["scorew2.schedule.*" ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/mutmut ] || { echo "run bash setup.sh first (it installs mutmut)" >&2; exit 1; }
[ $# -gt 0 ] || rm -rf mutants  # a whole run starts fresh; named mutants reuse the rest
start=$(date +%s)
.venv/bin/mutmut run --max-children "${JOBS:-2}" "$@"
seconds=$(( $(date +%s) - start ))
.venv/bin/python tests/mutation/report.py --seconds "$seconds" --out tests/mutation/report.md \
  --what "${*:-every mutant}"
