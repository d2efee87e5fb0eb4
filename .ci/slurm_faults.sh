# Cluster faults, sourced by .ci/slurm.sh (step 6) while its one-node cluster runs; uses its
# log, bounded, SMK, WORK, REPO, CONFIG. The cluster enforces memory (jobacct_gather's
# OverMemoryKill) and time limits. On one training job of tests/smoke/faults.yaml (about two
# minutes on one core) and its run group's evaluation:
#   a. memory: train given 200 MB (no retry) is killed by SLURM; the run fails, and the onerror
#      hint names the memory limit and the key, set-resources train:mem_mb; no checkpoints file
#   b. time: train given 1 minute (no retry) is killed at its time limit; the hint names
#      runtime; no checkpoints file, and the state file holds the epochs done
#   c. scancel: the profile as it is; train resumes from b's state file, is cancelled mid-run
#      (scancel), the profile's retry resubmits it with twice the time and memory
#      (runtime: 20 * attempt), it resumes again and the run completes; every CSV of the run
#      group equals an undisturbed local run's (started in the background at the beginning)
#   d. group jobs: in the smoke run of step 4, the evaluation steps of one run group that may
#      run side by side (w2, losses, lipschitz) did, inside one SLURM job: their benchmark
#      intervals [end - s, end] overlap (.ci/group_overlap.py)
# shellcheck shell=bash

FAULTS=(--configfile "$CONFIG" tests/smoke/faults.yaml)  # one option: a second replaces the first
GROUP=runs/loglog/moons/weight_clip/T10
STATE=runs/loglog/moons/train_T10/train_state.pt
CKPT=runs/loglog/moons/train_T10/checkpoints.pt
PY="$REPO/.venv/bin/python"

fail() { log "FAIL: $*"; exit 1; }

slurm_args() {  # slurm_args <fault>: the faults config through profiles/slurm, as step 4 runs it
  # (the target goes first: --set-resources takes every word after it)
  ARGS=(--profile profiles/slurm "${FAULTS[@]}" --config results_dir="$WORK/fslurm"
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 5
    --slurm-no-account --slurm-keep-successful-logs --slurm-logdir "$WORK/fault_logs/$1")
}

state_epoch() {  # the epoch a training state file holds, -1 if none
  "$PY" -c 'import sys, torch
try: print(int(torch.load(sys.argv[1], weights_only=True)["epoch"]))
except Exception: print(-1)' "$1"
}

expect_limit_kill() {  # expect_limit_kill <log> <limit> <resource>: failed, hint, no output
  grep -qF "scorew2: train (SLURM job" "$1" || { tail -n 40 "$1"; fail "no limit hint in $1"; }
  grep -F "scorew2: train (SLURM job" "$1" | grep -F "killed at its $2 limit" \
    | grep -qF -e "--set-resources train:$3=" || fail "the hint in $1 does not name $2 and $3"
  log "ok: $(grep -F 'scorew2: train (SLURM job' "$1" | head -1)"
  [ ! -e "$WORK/fslurm/$CKPT" ] || fail "a checkpoints file was left by the killed job"
}

log "faults: local reference run of tests/smoke/faults.yaml (background)"
timeout -k 30 900 "$SMK" "$WORK/flocal/$GROUP/bound.csv" "${FAULTS[@]}" \
  --config results_dir="$WORK/flocal" --cores 1 > "$WORK/flocal.log" 2>&1 &
LOCAL_PID=$!

limit_fault() {  # limit_fault <fault> <limit> <resource> <value>: train at a too-small limit
  local rc=0
  slurm_args "$1"
  bounded 600 "$SMK" "$WORK/fslurm/$GROUP/bound.csv" "${ARGS[@]}" --retries 0 \
    --set-resources "train:$3=$4" > "$WORK/fault_$1.log" 2>&1 || rc=$?
  [ "$rc" != 0 ] || fail "train ran to the end with $3=$4 (make faults.yaml longer)"
  expect_limit_kill "$WORK/fault_$1.log" "$2" "$3"
}

log "fault a: train over its memory limit (mem_mb=200, no retry)"
limit_fault mem memory mem_mb 200

log "fault b: train past its time limit (runtime=1 minute, no retry)"
limit_fault time time runtime 1
e_time=$(state_epoch "$WORK/fslurm/$STATE")
[ "$e_time" -gt 0 ] || fail "no training state was saved before the time limit"
log "ok: the state file holds epoch $e_time"

log "fault c: scancel mid-run; the profile's retry resumes"
slurm_args cancel
timeout -k 30 900 "$SMK" "$WORK/fslurm/$GROUP/bound.csv" "${ARGS[@]}" \
  > "$WORK/fault_cancel.log" 2>&1 &
RUN_PID=$!
jid="" e=-1
for _ in $(seq 1 300); do
  kill -0 "$RUN_PID" 2>/dev/null || break
  e=$(state_epoch "$WORK/fslurm/$STATE")
  jid=$(grep -oE "submitted with SLURM jobid [0-9]+" "$WORK/fault_cancel.log" | head -1 \
    | grep -oE "[0-9]+$" || true)
  if [ -n "$jid" ] && [ "$e" -gt "$e_time" ]; then break; fi
  sleep 1
done
[ -n "$jid" ] && [ "$e" -gt "$e_time" ] || fail "the training job did not resume (epoch $e)"
log "scancel $jid at epoch $e (resumed from $e_time)"
scancel "$jid"
rc=0
wait "$RUN_PID" || rc=$?
[ "$rc" = 0 ] || { tail -n 60 "$WORK/fault_cancel.log"; fail "the run did not survive scancel"; }
grep -qF "SLURM status is: 'CANCELLED'" "$WORK/fault_cancel.log" || fail "the cancel was not seen"
n_resumed=$(grep -rh "resuming from" "$WORK/fault_logs/cancel" | wc -l)
[ "$n_resumed" -ge 2 ] || fail "expected two resumed attempts in the SLURM logs, saw $n_resumed"
grep -qE "runtime=40\b" "$WORK/fault_cancel.log" \
  || fail "the retry did not ask for twice the runtime (runtime: 20 * attempt)"
log "ok: cancelled, resubmitted with runtime=40, resumed ($n_resumed resumed attempts in all)"

rc=0
wait "$LOCAL_PID" || rc=$?
[ "$rc" = 0 ] || { tail -n 40 "$WORK/flocal.log"; fail "the local reference run failed"; }
n_csv=0
for f in "$WORK/flocal/$GROUP"/*.csv; do
  cmp "$f" "$WORK/fslurm/$GROUP/$(basename "$f")" || fail "$(basename "$f") differs"
  n_csv=$((n_csv + 1))
done
[ "$n_csv" -ge 4 ] || fail "only $n_csv CSVs in the run group"
log "ok: $n_csv CSVs of $GROUP identical to the undisturbed local run's"

if [ -z "${SLURM_CI_FAULTS_ONLY:-}" ]; then
  log "check d: group jobs run their steps side by side"
  "$PY" .ci/group_overlap.py "$WORK/slurm" || fail "group steps did not overlap"
fi
