#!/usr/bin/env bash
# A real single-node SLURM for the SLURM/MPI test suites (test/slurm.test.ts) and CI: munge with a
# key in /etc/munge, /etc/slurm/slurm.conf (ours: marked by its first line; any other is left
# alone and the script refuses), slurmctld and slurmd as root with their state, spool, logs and pid
# files under $PLAIT_SLURM_DIR (default /tmp/plait-slurm); then waits (at most
# $PLAIT_SLURM_WAIT seconds, default 60) for sinfo to show the node idle. Idempotent: when
# everything is already up with this config, it only checks. Needs root and Debian's slurm-wlm and
# munge (apt-get install -y slurm-wlm munge). scripts/slurm-down.sh stops what this started.
set -euo pipefail

DIR=${PLAIT_SLURM_DIR:-/tmp/plait-slurm}
WAIT=${PLAIT_SLURM_WAIT:-60}
CONF=/etc/slurm/slurm.conf
MARK="# plait: written by scripts/slurm-up.sh (remove this line to keep the script off this file)"
START=$(date +%s.%N)

die() {
  echo "slurm-up: $*" >&2
  exit 1
}

elapsed() { awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

logs() {
  local f
  for f in "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" /var/log/munge/munged.log; do
    [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
  done
  return 0
}

[[ $EUID -eq 0 ]] || die "run as root (sudo $0): slurmctld and slurmd run as root here"
for cmd in munge unmunge munged slurmctld slurmd sinfo scontrol srun; do
  command -v "$cmd" >/dev/null || die "$cmd not found; install with: apt-get install -y slurm-wlm munge"
done

# --- munge: a key owned by munge, the daemon running as munge
install -d -m 0700 -o munge -g munge /etc/munge /var/lib/munge
install -d -m 0755 -o munge -g munge /run/munge
install -d -m 0700 -o munge -g munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  # none answers: --force lets a new one replace a stale socket left by one that died
  runuser -u munge -- munged --force || { logs; die "munged did not start"; }
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n | unmunge >/dev/null || { logs; die "munge does not work (munge -n | unmunge fails)"; }
fi

# --- slurm.conf: ours or none
HOST=$(hostname -s)
CPUS=$(nproc)
# slurmctld and slurmd must resolve the host; where it is not in /etc/hosts or DNS, loopback
ADDR=""
NODEADDR=""
if ! getent hosts "$HOST" >/dev/null; then
  ADDR="(127.0.0.1)"
  NODEADDR=" NodeAddr=127.0.0.1"
fi
if [[ -e $CONF ]] && ! head -n 1 "$CONF" | grep -qxF "$MARK"; then
  die "$CONF exists and was not written by this script; not touching it (move it away to use scripts/slurm-up.sh)"
fi
NEW=$(
  cat <<EOF
$MARK
ClusterName=plait
SlurmctldHost=$HOST$ADDR
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName=$HOST CPUs=$CPUS$NODEADDR State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES OverSubscribe=YES State=UP MaxTime=INFINITE
EOF
)

running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  local pidfile=$1 pid
  running "$pidfile" || return 0
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /etc/slurm
if [[ ! -e $CONF ]] || [[ "$(cat "$CONF")" != "$NEW" ]]; then
  # a changed config (host, cores, folder): the daemons of the old one stop, and start on the new one
  if [[ -e $CONF ]]; then
    for key in SlurmdPidFile SlurmctldPidFile; do
      old=$(sed -n "s/^$key=//p" "$CONF")
      if [[ -n $old ]]; then stop "$old"; fi
    done
  fi
  printf '%s\n' "$NEW" >"$CONF"
fi

# --- the daemons (they fork, and write their pid files)
if ! running "$DIR/slurmctld.pid"; then
  slurmctld || { logs; die "slurmctld did not start"; }
fi
if ! running "$DIR/slurmd.pid"; then
  slurmd || { logs; die "slurmd did not start"; }
fi

state=""
deadline=$(($(date +%s) + WAIT))
while (($(date +%s) < deadline)); do
  state=$(timeout 5 sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -n 1 || true)
  case $state in
    idle | mix | alloc) break ;; # up (mix/alloc: a job of an earlier run still holds cores)
  esac
  sleep 0.5
done
case $state in
  idle | mix | alloc) ;;
  *)
    timeout 5 sinfo -N -l >&2 || true
    timeout 5 scontrol show node "$HOST" >&2 || true
    logs
    die "node $HOST not idle after ${WAIT}s (state: ${state:-none}); logs in $DIR/log"
    ;;
esac
echo "slurm-up: node $HOST ($CPUS CPUs) $state in partition debug after $(elapsed) s; logs in $DIR/log"
