#!/usr/bin/env bash
# CI step: the smoke config on a real single-node SLURM cluster, through profiles/slurm.
#
#   1. install Debian's SLURM (slurmctld, slurmd, slurm-client, munge) and, if missing, the
#      Snakemake SLURM executor plugin into .venv
#   2. run the smoke config locally (the reference)
#   3. start munged, slurmctld, slurmd on loopback (state and logs in a scratch folder; the
#      config must be /etc/slurm/slurm.conf, which srun inside a job reads: an existing one
#      that this script did not write is never overwritten)
#   4. run the same config with --profile profiles/slurm into another results_dir
#   5. check: every job that wrote a log ran inside a SLURM job (numbered SLURM log naming the
#      job's log file), the same jobs ran as locally, and tables/runs.csv, claims.csv are
#      byte-equal to the local run's (claims.md too, but for its config-hash line)
#   6. cluster faults (.ci/slurm_faults.sh): a job over its memory or time limit, a scancel
#      mid-training, group jobs running their steps side by side
#   7. stop every daemon it started, by PID, and cancel leftover SLURM jobs (also on failure)
#
# Everything is bounded: each step by `timeout`, the whole step by SLURM_CI_TIMEOUT seconds
# (default 3000), and the daemons are stopped by the outer shell even if the inner one is killed.
# Needs root and apt (Debian 12 / SLURM 22.05 tested). Usage: bash .ci/slurm.sh
#   (bash .ci/slurm.sh --remove-stale: only remove a killed run's leftover slurm.conf, below)
# Environment: SLURM_CI_WORK (scratch folder, default a new /tmp/scorew2-slurmci.*),
#   SLURM_CI_TIMEOUT (s), SLURM_CI_KEEP=1 keeps the scratch folder on success,
#   SLURM_CI_FAULTS_ONLY=1 runs the cluster and its faults only (no smoke runs, no check d),
#   SLURM_CI_REFERENCE=<results_dir> of a finished local smoke run replaces step 2 (.ci/run
#   passes the tests' smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
SELF="$REPO/.ci/slurm.sh"

SLURM_CONF=/etc/slurm/slurm.conf
MARK="# single-node CI cluster written by scorew2 .ci/slurm.sh"
ours() { head -1 "$SLURM_CONF" | grep -qxF "$MARK"; }   # the slurm.conf is this script's

# ------------------------------------------------------------------ a killed run's leftover
# A run killed before its teardown (its session ended) leaves its marked slurm.conf behind.
# scontrol then waits about 9 s for the controller that is gone, and so does every Snakemake
# start on this machine: the SLURM executor plugin runs `scontrol show config` when it is
# imported. `bash .ci/slurm.sh --remove-stale` (.ci/run, before its tests) removes that file
# when no slurmctld runs; any other slurm.conf is left alone.
if [ "${1:-}" = "--remove-stale" ]; then
  if [ -f "$SLURM_CONF" ] && ours && ! pgrep -x slurmctld >/dev/null; then
    if rm -f "$SLURM_CONF" /etc/slurm/cgroup.conf; then
      echo "slurm.sh: removed the stale $SLURM_CONF of a killed CI run"
    else
      echo "slurm.sh: cannot remove the stale $SLURM_CONF (not root?): Snakemake starts wait ~9 s"
    fi
  fi
  exit 0
fi

# ------------------------------------------------------------------ outer: bound + teardown
if [ -z "${SLURM_CI_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "slurm.sh: needs root (apt-get, daemons)" >&2; exit 1; }
  WORK="${SLURM_CI_WORK:-$(mktemp -d /tmp/scorew2-slurmci.XXXXXX)}"
  mkdir -p "$WORK/pids"
  chmod 755 "$WORK"
  T0=$(date +%s)
  rc=0
  SLURM_CI_INNER=1 SLURM_CI_WORK="$WORK" SLURM_CI_T0="$T0" \
    timeout -k 90 "${SLURM_CI_TIMEOUT:-3000}" bash "$SELF" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "slurm.sh: TIMEOUT after ${SLURM_CI_TIMEOUT:-3000} s" >&2
  fi
  # The inner shell stops its daemons in its EXIT trap; if it was killed before it could,
  # stop them here (same PID files, so nothing is stopped twice).
  SLURM_CI_INNER=1 SLURM_CI_WORK="$WORK" timeout 120 bash "$SELF" --teardown || true
  if [ "$rc" = 0 ] && [ -z "${SLURM_CI_KEEP:-}" ]; then rm -rf "$WORK"; fi
  echo "slurm.sh: exit $rc after $(( $(date +%s) - T0 )) s (scratch: $WORK)"
  exit "$rc"
fi

# ------------------------------------------------------------------ inner
WORK="$SLURM_CI_WORK"
PIDDIR="$WORK/pids"
T0="${SLURM_CI_T0:-$(date +%s)}"
HOST="$(hostname -s)"
CONFIG=tests/smoke/config.yaml
SMK="$REPO/.venv/bin/snakemake"
PLUGIN="snakemake-executor-plugin-slurm>=2.8.0,<3"
log() { echo "[slurm-ci $(date +%T) +$(( $(date +%s) - T0 ))s] $*"; }

stop_pid() {  # stop_pid <name>: TERM, wait up to 15 s, then KILL the PID recorded for <name>
  local f="$PIDDIR/$1.pid" p
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$p" 2>/dev/null; then log "$1 ($p) ignored TERM: KILL"; kill -KILL "$p" || true; fi
  fi
  log "stopped $1 (pid $p)"
  rm -f "$f"
}

teardown() {
  # Leftover jobs first (their slurmstepd would outlive slurmd), then the daemons in reverse
  # start order. Only this cluster's jobs and only the PIDs recorded here are touched.
  if [ -s "$PIDDIR/slurmctld.pid" ] && kill -0 "$(cat "$PIDDIR/slurmctld.pid")" 2>/dev/null; then
    timeout 15 scancel --full --user=root >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid munged
  if [ -f "$SLURM_CONF" ] && ours; then
    rm -f "$SLURM_CONF" /etc/slurm/cgroup.conf
  fi
}

if [ "${1:-}" = "--teardown" ]; then teardown; exit 0; fi

exec 3>&1 4>&2   # the step's own output: traps may fire inside a redirected command
on_exit() {
  local rc=$?
  trap - EXIT
  exec 1>&3 2>&4
  log "teardown (exit code $rc)"
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK"/log/slurmctld.log "$WORK"/log/slurmd.log; do
      [ -f "$f" ] && { echo "---- tail $f"; tail -n 25 "$f"; }
    done
  fi
  teardown
  exit "$rc"
}
trap on_exit EXIT

# Long commands run in the background under `timeout` and are waited for, so that a TERM to
# this shell (the outer bound) is handled at once: forwarded to the command, then teardown.
CHILD=""
bounded() {  # bounded <seconds> <command...>
  timeout -k 30 "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}
on_signal() {
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" || true; fi
  exit 143
}
trap on_signal TERM INT HUP

wait_for() {  # wait_for <seconds> <what> <command...>
  local n=$1 what=$2
  shift 2
  for _ in $(seq 1 "$n"); do
    if timeout 10 "$@" >/dev/null 2>&1; then log "ready: $what"; return 0; fi
    sleep 1
  done
  log "TIMEOUT waiting for: $what"
  return 1
}

# ------------------------------------------------------------------ 1. install
log "install SLURM (apt) into a bare machine if needed"
export DEBIAN_FRONTEND=noninteractive
APT=(-o DPkg::Lock::Timeout=120 -o Acquire::Retries=3)
if ! dpkg-query -W -f='${Status}\n' slurmctld slurmd slurm-client munge 2>/dev/null \
    | grep -c "install ok installed" | grep -qx 4; then
  bounded 180 apt-get "${APT[@]}" update -qq
  # no systemd here: the packages install but start nothing (expected)
  bounded 420 apt-get "${APT[@]}" install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi
log "SLURM $(dpkg-query -W -f='${Version}' slurmctld), $(munged --version 2>&1 | head -1)"
if ! "$REPO/.venv/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
  log "pip install $PLUGIN"
  bounded 300 "$REPO/.venv/bin/python" -m pip install -q "$PLUGIN"
fi

# profiles/slurm-gpu must be profiles/slurm plus one GPU for train, nothing else
"$REPO/.venv/bin/python" - <<'EOF'
import yaml
cpu = yaml.safe_load(open("profiles/slurm/profile.yaml"))
gpu = yaml.safe_load(open("profiles/slurm-gpu/profile.yaml"))
train = gpu["set-resources"]["train"]
assert train.pop("gpu", None) == 1, "profiles/slurm-gpu: train must ask for gpu: 1"
assert cpu == gpu, "profiles/slurm-gpu differs from profiles/slurm beyond train's gpu: 1"
EOF
log "ok: profiles/slurm-gpu = profiles/slurm + one GPU for train"

# ------------------------------------------------------------------ 2. local reference run
LOCAL="$WORK/local"
if [ -n "${SLURM_CI_FAULTS_ONLY:-}" ]; then
  log "SLURM_CI_FAULTS_ONLY: no smoke runs"
elif [ -n "${SLURM_CI_REFERENCE:-}" ]; then
  [ -s "$SLURM_CI_REFERENCE/tables/runs.csv" ] \
    || { log "FAIL: SLURM_CI_REFERENCE=$SLURM_CI_REFERENCE holds no smoke run"; exit 1; }
  LOCAL="$SLURM_CI_REFERENCE"
  LOCAL_S=$(cat "$(dirname "$LOCAL")/smoke_seconds" 2>/dev/null || echo "?")
  log "local reference: the smoke run in $LOCAL (not run again; it took $LOCAL_S s)"
else
  log "local run of $CONFIG"
  t_local=$(date +%s)
  bounded 600 "$SMK" --configfile "$CONFIG" --config results_dir="$LOCAL" \
    --quiet rules > "$WORK/local.log" 2>&1 || { tail -n 40 "$WORK/local.log"; exit 1; }
  LOCAL_S=$(( $(date +%s) - t_local ))
fi

# ------------------------------------------------------------------ 3. cluster
log "configure a one-node cluster on $HOST (loopback)"
# NodeName must be `hostname -s` and resolve
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
if [ -f "$SLURM_CONF" ] && ! ours; then
  log "FAIL: $SLURM_CONF exists and is not this script's: refusing to replace a real cluster's"
  exit 1
fi
if timeout 5 scontrol ping >/dev/null 2>&1; then
  log "FAIL: a SLURM controller is already running here"; exit 1
fi
mkdir -p /etc/slurm "$WORK/run" "$WORK/log" "$WORK/spool/ctld" "$WORK/spool/d"
chown slurm:slurm "$WORK/run" "$WORK/log" "$WORK/spool/ctld"
MEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 80 / 100 ))
cat > "$SLURM_CONF" <<EOF
$MARK
ClusterName=scorew2ci
SlurmctldHost=${HOST}
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$WORK/spool/ctld
SlurmdSpoolDir=$WORK/spool/d
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
AccountingStorageType=accounting_storage/none
# memory limits enforced by polling (no cgroups in a container): a step over its --mem is killed
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
# finished jobs stay visible to squeue this long; the plugin's squeue status needs >= 3 x 5 s
MinJobAge=300
KillWait=5
Waittime=0
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${MEM} State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# SLURM >= 23.02 initialises a cgroup plugin in slurmd even with proctrack/linuxproc
if [ "$(dpkg-query -W -f='${Version}' slurm-client | cut -d. -f1)" -ge 23 ]; then
  echo "CgroupPlugin=disabled" > /etc/slurm/cgroup.conf
fi

# munge: reuse a running munged (not ours: left alone), else start one
if timeout 5 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then
  log "munged already running: reused, not stopped"
else
  log "start munged"
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0755 /run/munge
  chmod 0700 /etc/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  rm -f /run/munge/munged.pid
  timeout 20 runuser -u munge -- /usr/sbin/munged   # daemonizes
  cp /run/munge/munged.pid "$PIDDIR/munged.pid"
  wait_for 15 munge bash -c 'munge -n | unmunge'
fi

log "start slurmctld"
timeout 20 /usr/sbin/slurmctld -f "$SLURM_CONF"    # daemonizes, drops to SlurmUser
wait_for 30 slurmctld-pidfile test -s "$WORK/run/slurmctld.pid"
cp "$WORK/run/slurmctld.pid" "$PIDDIR/slurmctld.pid"
wait_for 60 slurmctld bash -c 'scontrol ping | grep -q UP'

log "start slurmd"
timeout 20 /usr/sbin/slurmd -f "$SLURM_CONF"
wait_for 30 slurmd-pidfile test -s "$WORK/run/slurmd.pid"
cp "$WORK/run/slurmd.pid" "$PIDDIR/slurmd.pid"
wait_for 60 "node $HOST idle" bash -c "sinfo -h -n $HOST -o %t | grep -qx idle"
log "sbatch probe: $(timeout 60 sbatch --wait -t 1 -o "$WORK/probe.out" \
  --wrap 'echo job $SLURM_JOB_ID' >/dev/null && cat "$WORK/probe.out")"

# ------------------------------------------------------------------ 4. the run through SLURM
if [ -z "${SLURM_CI_FAULTS_ONLY:-}" ]; then
  # The profile as a real cluster uses it; CI-only settings on the command line (they win):
  # no slurmdbd here, so sacct cannot answer: poll with squeue, early; no account to guess;
  # keep every SLURM log for the check below.
  log "snakemake --profile profiles/slurm"
  t_slurm=$(date +%s)
  bounded 1800 "$SMK" --profile profiles/slurm --configfile "$CONFIG" \
    --config results_dir="$WORK/slurm" \
    --slurm-status-command squeue --slurm-init-seconds-before-status-checks 5 \
    --slurm-no-account --slurm-keep-successful-logs --slurm-logdir "$WORK/slurm_logs" \
    > "$WORK/slurm.log" 2>&1 || { tail -n 60 "$WORK/slurm.log"; exit 1; }
  # the machine-independent figure: the SLURM run's wall time over the local run's
  log "timing: the smoke config took $(( $(date +%s) - t_slurm )) s through SLURM," \
    "$LOCAL_S s locally (the same machine)"

# ------------------------------------------------------------------ 5. checks
  log "check: every job ran under SLURM"
  n_sub=$(grep -c "has been submitted with SLURM jobid [0-9]" "$WORK/slurm.log" || true)
  if grep -E "^localrule " "$WORK/slurm.log" | grep -vqE "^localrule (all|fig1|fig2|fig3|figF|fig4a|fig4b):"; then
    log "FAIL: a job ran on the submit host:"; grep -E "^localrule " "$WORK/slurm.log"; exit 1
  fi
  # every rule log of the run must be named by a SLURM job's own log (<jobid>.log)
  fail=0 n_logs=0
  while IFS= read -r f; do
    n_logs=$((n_logs + 1))
    hit=$(grep -rlF -- "$f" "$WORK/slurm_logs" | grep -E '/[0-9]+\.log$' | head -1 || true)
    if [ -z "$hit" ]; then log "FAIL: no SLURM job ran $f"; fail=1; fi
  done < <(find "$WORK/slurm/logs" -type f -name '*.log' | sort)
  [ "$fail" = 0 ] || exit 1
  # the same jobs as the local run
  if ! diff <(cd "$LOCAL/logs" && find . -type f | sort) \
            <(cd "$WORK/slurm/logs" && find . -type f | sort); then
    log "FAIL: the SLURM run ran other jobs than the local run"; exit 1
  fi
  log "ok: $n_logs job logs, all inside $n_sub SLURM jobs"

  log "check: tables equal the local run's"
  for t in runs.csv claims.csv; do
    if cmp "$LOCAL/tables/$t" "$WORK/slurm/tables/$t"; then log "ok: tables/$t identical"
    else diff "$LOCAL/tables/$t" "$WORK/slurm/tables/$t" | head -20; exit 1; fi
  done
  # claims.md: identical but for the config hash, which covers results_dir (differs here)
  if diff <(grep -v '^- config hash:' "$LOCAL/tables/claims.md") \
          <(grep -v '^- config hash:' "$WORK/slurm/tables/claims.md"); then
    log "ok: tables/claims.md identical (config hash line aside)"
  else exit 1; fi
  log "ok: smoke config through SLURM ($n_sub SLURM jobs) equals the local run"

fi

# ------------------------------------------------------------------ 6. faults
# shellcheck source=.ci/slurm_faults.sh
source "$REPO/.ci/slurm_faults.sh"
log "PASS: the smoke config through SLURM equals the local run; faults survived"
