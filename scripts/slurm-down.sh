#!/usr/bin/env bash
# Stops what scripts/slurm-up.sh started: slurmd and slurmctld (by their pid files under
# $PLAIT_SLURM_DIR, default /tmp/plait-slurm). munged and /etc/slurm/slurm.conf stay (other
# programs may use munge; slurm-up.sh rewrites its own config). --purge also removes the folder
# (job and node state, logs).
set -euo pipefail

DIR=${PLAIT_SLURM_DIR:-/tmp/plait-slurm}

stop() {
  local name=$1 pidfile=$2 pid
  if [[ ! -s $pidfile ]] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "slurm-down: $name not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "slurm-down: $name ($pid) stopped"
      return 0
    fi
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  echo "slurm-down: $name ($pid) killed after 10 s"
}

# the pid files our slurm.conf names (it may name another folder than $PLAIT_SLURM_DIR), else $DIR's
pidfile() {
  local file
  if head -n 1 /etc/slurm/slurm.conf 2>/dev/null | grep -q '^# plait: written by scripts/slurm-up.sh'; then
    file=$(sed -n "s/^$1=//p" /etc/slurm/slurm.conf)
  fi
  echo "${file:-$DIR/$2.pid}"
}

stop slurmd "$(pidfile SlurmdPidFile slurmd)"
stop slurmctld "$(pidfile SlurmctldPidFile slurmctld)"
if [[ ${1:-} == --purge ]]; then rm -rf "$DIR"; fi
