#!/usr/bin/env bash
# Mutation testing of the mathematics: mutmut over the modules and tests named in pyproject's
# [tool.mutmut], then the per-module report (tests/mutation/report.md). Not part of the CI
# test run (it takes tens of minutes: the report says how long); run it after changing one of
# those modules or their tests:   bash tests/mutation/run.sh ["scorew2.schedule.*" ...]
# (WHAT="..." names the run in the report when the list is long)
# mutmut's verdicts per source file (its mutants/src/scorew2/*.py.meta) are kept in
# tests/mutation/state/: a named run on a fresh checkout starts from them, and mutmut itself
# drops the verdicts of every function whose code changed since.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/mutmut ] || { echo "run bash setup.sh first (it installs mutmut)" >&2; exit 1; }
state=tests/mutation/state
if [ $# -eq 0 ]; then
  rm -rf mutants  # a whole run starts fresh
elif [ ! -d mutants ] && compgen -G "$state/*.meta" > /dev/null; then
  mkdir -p mutants/src/scorew2 && cp "$state"/*.meta mutants/src/scorew2/
fi
start=$(date +%s)
.venv/bin/mutmut run --max-children "${JOBS:-2}" "$@"
seconds=$(( $(date +%s) - start ))
mkdir -p "$state" && cp mutants/src/scorew2/*.py.meta "$state"/
.venv/bin/python tests/mutation/report.py --seconds "$seconds" --out tests/mutation/report.md \
  --what "${WHAT:-${*:-every mutant}}"
