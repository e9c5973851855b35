#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests (tests/slurm/) and for trying the
# cluster path of docs/cluster.md before a real cluster.
#
#   sudo bash scripts/slurm/local-cluster.sh start    # install if missing, start munged, slurmctld, slurmd
#   export SLURM_CONF=/tmp/synthssl-slurm/slurm.conf  # (start prints it) for sbatch, srun, squeue, scontrol
#   sudo bash scripts/slurm/local-cluster.sh status   # each daemon and the node; exit 0 when all three run
#   sudo bash scripts/slurm/local-cluster.sh stop     # cancel the jobs, stop the three daemons
#
# `start` installs Debian's slurm-wlm (22.05) and munge with apt-get when they are missing, then
# writes everything under one private folder, SYNTHSSL_SLURM_DIR (default /tmp/synthssl-slurm):
# a fresh munge key, slurm.conf (one node: this host with its CPUs and memory as `slurmd -C` sees
# them, one partition `local`; ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# SelectType=select/cons_tres, JobRequeue=1, MinJobAge=60), the state, spool and log folders and
# the three PID files. It starts munged (its own socket in that folder), slurmctld and slurmd
# directly -- no systemd, no /etc/slurm -- and returns once `srun hostname` answers. A second
# `start` while all three run says so and changes nothing.
# `stop` cancels the cluster's jobs and ends only the daemons whose PID files that folder holds
# (checking each PID still runs the program it was written for); a system munged or slurmd is
# never touched. Logs stay in $SYNTHSSL_SLURM_DIR/log.
#
# Ports: slurmctld SYNTHSSL_SLURM_PORT (default 6817), slurmd the next one. Needs root (apt-get,
# and slurmd starts jobs as their user); refuses with one line and exit 2 otherwise.
set -euo pipefail

DIR="${SYNTHSSL_SLURM_DIR:-/tmp/synthssl-slurm}"
PORT="${SYNTHSSL_SLURM_PORT:-6817}"
CONF="$DIR/slurm.conf"
PROG="local-cluster.sh"
DAEMONS=(munged slurmctld slurmd)

refuse() { echo "$PROG: $*" >&2; exit 2; }
say() { echo "$PROG: $*"; }

pid_file() { echo "$DIR/run/$1.pid"; }

# The PID in the daemon's PID file when that process still runs that program, else nothing.
live_pid() {
    local file pid
    file="$(pid_file "$1")"
    [ -s "$file" ] || return 0
    pid="$(tr -dc '0-9' < "$file")"
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] && echo "$pid"
    return 0
}

need_root() {
    [ "$(id -u)" = 0 ] || refuse "needs root (apt-get, and slurmd runs jobs as their users); run: sudo bash $0 $1"
}

install_packages() {
    local missing=()
    for tool in munged slurmctld slurmd srun sbatch; do
        command -v "$tool" > /dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get > /dev/null || refuse "slurm-wlm and munge are not installed (missing: ${missing[*]}) and there is no apt-get to install them"
    mkdir -p "$DIR"
    say "installing slurm-wlm and munge with apt-get (missing: ${missing[*]}) ..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge > "$DIR/apt.log" 2>&1; then
        apt-get update -q >> "$DIR/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends slurm-wlm munge >> "$DIR/apt.log" 2>&1 ||
            refuse "apt-get could not install slurm-wlm and munge (see $DIR/apt.log)"
    fi
}

write_config() {
    # `slurmd -C` prints this node's line as slurmd will detect it (CPUs, sockets, cores, memory).
    local node host cpus mem
    node="$(slurmd -C | head -n 1)"
    host="$(hostname -s)"
    cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<< "$node")"
    mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<< "$node")"
    [ -n "$cpus" ] && [ -n "$mem" ] || refuse "slurmd -C printed no CPUs/RealMemory: $node"
    mem=$((mem * 9 / 10)) # leave the system a tenth
    local tmp="$CONF.tmp"
    cat > "$tmp" << EOF
# Written by scripts/slurm/local-cluster.sh: a private one-node cluster (state under $DIR).
ClusterName=synthssl-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$(pid_file slurmctld)
SlurmdPidFile=$(pid_file slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
MinJobAge=60
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 $(sed 's/^NodeName=[^ ]* //; s/RealMemory=[0-9]*/RealMemory='"$mem"'/' <<< "$node") State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    chmod 644 "$tmp"
    mv "$tmp" "$CONF"
}

start_munged() {
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$(pid_file munged)" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND until it succeeds
    local limit="$1" what="$2" t=0
    shift 2
    until "$@" > /dev/null 2>&1; do
        t=$((t + 1))
        if [ "$t" -gt "$limit" ]; then
            echo "$PROG: $what did not come up within ${limit} s (logs in $DIR/log)" >&2
            return 1
        fi
        sleep 1
    done
}

all_running() {
    for d in "${DAEMONS[@]}"; do
        [ -n "$(live_pid "$d")" ] || return 1
    done
}

node_ready() { sinfo -h -N -o '%T' | grep -qx -E 'idle|mixed|allocated'; }

cmd_start() {
    need_root start
    install_packages
    export SLURM_CONF="$CONF"
    if all_running; then
        say "already running (munged, slurmctld, slurmd from $DIR)"
        say "clients need: export SLURM_CONF=$CONF"
        return 0
    fi
    stop_daemons # whatever is left of an earlier start
    rm -rf "$DIR/state" "$DIR/spool" "$DIR/run"
    mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run"
    chmod 755 "$DIR" "$DIR/run" "$DIR/log"
    chmod 700 "$DIR/state" "$DIR/spool"
    chmod 711 "$DIR/munge" # users reach the socket, not the key
    write_config
    start_munged || refuse "munged would not start (see $DIR/log/munged.log)"
    wait_for 10 munged test -S "$DIR/munge/munge.socket" || exit 1
    chmod 777 "$DIR/munge/munge.socket"
    slurmctld -f "$CONF" || refuse "slurmctld would not start (see $DIR/log/slurmctld.log)"
    wait_for 30 slurmctld scontrol ping || exit 1
    slurmd -f "$CONF" || refuse "slurmd would not start (see $DIR/log/slurmd.log)"
    wait_for 30 "the node" node_ready || exit 1
    wait_for 30 "srun hostname" srun --immediate=10 -N1 -n1 hostname || exit 1
    say "running: $(sinfo -h -N -o '%N, %c CPUs, %m MB, %T') (SLURM $(sinfo -V | awk '{print $2}'), state in $DIR)"
    say "clients need: export SLURM_CONF=$CONF"
}

stop_daemons() {
    local pid
    if [ -n "$(live_pid slurmctld)" ] && [ -f "$CONF" ]; then
        local jobs
        jobs="$(SLURM_CONF="$CONF" squeue -h -o %A 2> /dev/null || true)"
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            SLURM_CONF="$CONF" scancel $jobs 2> /dev/null || true
            for _ in $(seq 1 15); do
                [ -z "$(SLURM_CONF="$CONF" squeue -h -o %A -t running,completing 2> /dev/null)" ] && break
                sleep 1
            done
        fi
    fi
    for d in slurmd slurmctld munged; do
        pid="$(live_pid "$d")"
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2> /dev/null || true
        for _ in $(seq 1 50); do
            [ -d "/proc/$pid" ] || break
            sleep 0.2
        done
        [ -d "/proc/$pid" ] && kill -KILL "$pid" 2> /dev/null || true
        rm -f "$(pid_file "$d")"
        say "stopped $d (pid $pid)"
    done
}

cmd_stop() {
    need_root stop
    export SLURM_CONF="$CONF"
    stop_daemons
    say "stopped (nothing of $DIR runs; logs in $DIR/log)"
}

cmd_status() {
    local ok=0 pid
    for d in "${DAEMONS[@]}"; do
        pid="$(live_pid "$d")"
        if [ -n "$pid" ]; then
            say "$d running (pid $pid)"
        else
            say "$d not running"
            ok=3
        fi
    done
    if [ "$ok" = 0 ]; then
        say "node: $(SLURM_CONF="$CONF" sinfo -h -N -o '%N, %c CPUs, %m MB, %T'); jobs: $(SLURM_CONF="$CONF" squeue -h | wc -l)"
        say "clients need: export SLURM_CONF=$CONF"
    fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) refuse "usage: $0 start|stop|status (state in SYNTHSSL_SLURM_DIR=$DIR)" ;;
esac
