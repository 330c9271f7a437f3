#!/usr/bin/env bash
# Stops what scripts/slurm-up.sh started: slurmd and slurmctld (by their pid files under
# $PLAIT_SLURM_DIR, default /tmp/plait-slurm). munged and /etc/slurm/slurm.conf stay (other
# programs may use munge; slurm-up.sh rewrites its own config). --purge also removes the folder
# (job and node state, logs).
set -euo pipefail

DIR=${PLAIT_SLURM_DIR:-/tmp/plait-slurm}

stop() {
  local name=$1 pidfile=$DIR/$1.pid pid
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

stop slurmd
stop slurmctld
if [[ ${1:-} == --purge ]]; then rm -rf "$DIR"; fi
