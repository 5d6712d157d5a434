#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try utils/slurm.sh (cmd_backend=slurm).
#
#   tools/slurm_local.sh start|stop|status
#
# start   installs Debian's slurm-wlm and munge with apt-get if they are missing
#         (needs root), then starts munged, slurmctld and slurmd with their own
#         config, keys, state, logs and pid files in ${GCFT_SLURM_DIR}
#         (default: tools/slurm_local/); the machine's /etc/slurm and /etc/munge
#         are not used or touched. Waits until the node is idle and prints the
#         `export SLURM_CONF=...` line that points the Slurm commands at it.
#         Does nothing (but print that line) if the cluster already runs.
# stop    cancels the cluster's jobs and stops the daemons started by `start`
#         (by their pid files).
# status  tells which daemons run and shows sinfo and squeue.
#
# Environment: GCFT_SLURM_DIR (private directory), GCFT_SLURM_PORT (slurmctld
# port, default 6817; slurmd uses the next one), GCFT_SLURM_TIMEOUT (seconds to
# wait for the node, default 60).
#
# There is no accounting database (slurmdbd), so `sacct` does not work here:
# follow jobs with `squeue` and `scontrol show job <id>` (finished jobs stay
# visible for a short while); a line per finished job is written to
# ${GCFT_SLURM_DIR}/log/jobcomp.log.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status" >&2
    echo "  a one-node Slurm cluster in \${GCFT_SLURM_DIR:-tools/slurm_local}" >&2
    exit 2
}
[ $# -eq 1 ] || usage
action=$1
case "${action}" in start|stop|status) ;; -h|--help) usage ;; *) usage ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(realpath -m "${GCFT_SLURM_DIR:-${root}/tools/slurm_local}")
port=${GCFT_SLURM_PORT:-6817}
timeout=${GCFT_SLURM_TIMEOUT:-60}
conf=${dir}/etc/slurm.conf
socket=${dir}/munge/munge.socket
export SLURM_CONF=${conf}
daemons=(munged slurmctld slurmd)

log() { echo "slurm_local: $*"; }
die() { echo "slurm_local: error: $*" >&2; exit 1; }

pid_file() {  # pid_file <daemon>
    case "$1" in
        munged) echo "${dir}/munge/munged.pid" ;;
        *) echo "${dir}/run/$1.pid" ;;
    esac
}

running_pid() {  # print the pid of <daemon> if its pid file names a live process of that name
    local file pid
    file=$(pid_file "$1")
    [ -s "${file}" ] || return 1
    pid=$(tr -dc '0-9' < "${file}")
    [ -n "${pid}" ] && [ -r "/proc/${pid}/comm" ] || return 1
    [ "$(cat "/proc/${pid}/comm" 2>/dev/null)" = "$1" ] || return 1
    echo "${pid}"
}

log_paths() { echo "${dir}/log/munged.log ${dir}/log/slurmctld.log ${dir}/log/slurmd.log"; }

install_packages() {
    local missing=() tool
    for tool in munged mungekey slurmctld slurmd sbatch; do
        command -v "${tool}" >/dev/null || missing+=("${tool}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "${missing[*]} not found: install them as root (apt-get install slurm-wlm munge) or run this as root"
    command -v apt-get >/dev/null || die "${missing[*]} not found and there is no apt-get: install Slurm and munge yourself"
    log "installing slurm-wlm and munge with apt-get (missing: ${missing[*]})"
    # Keep the packages' own services (munge, slurmd, slurmctld) from starting.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "${policy}" ]; then
        printf '#!/bin/sh\nexit 101\n' > "${policy}"; chmod 755 "${policy}"; made_policy=1
    fi
    local status=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge \
            || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -q --no-install-recommends slurm-wlm munge; }
    } || status=$?
    [ -z "${made_policy}" ] || rm -f "${policy}"
    [ "${status}" -eq 0 ] || die "apt-get install slurm-wlm munge failed (status ${status})"
    for tool in munged mungekey slurmctld slurmd sbatch; do
        command -v "${tool}" >/dev/null || die "${tool} still not found after installing slurm-wlm and munge"
    done
}

# node_line: NodeName=... CPUs=... RealMemory=... for this machine (a bit less memory than total).
node_line() {
    local name cpus memory sockets="" cores="" threads="" hw
    name=$(hostname -s)
    cpus=$(nproc)
    memory=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    if hw=$(slurmd -C 2>/dev/null | head -n 1) && [[ "${hw}" == NodeName=* ]]; then
        [[ "${hw}" =~ (^| )CPUs=([0-9]+) ]] && cpus=${BASH_REMATCH[2]}
        [[ "${hw}" =~ SocketsPerBoard=([0-9]+) ]] && sockets=${BASH_REMATCH[1]}
        [[ "${hw}" =~ CoresPerSocket=([0-9]+) ]] && cores=${BASH_REMATCH[1]}
        [[ "${hw}" =~ ThreadsPerCore=([0-9]+) ]] && threads=${BASH_REMATCH[1]}
        [[ "${hw}" =~ RealMemory=([0-9]+) ]] && memory=${BASH_REMATCH[1]}
    fi
    # leave the system 5% (at least 256 MB)
    local spare=$((memory / 20)); [ "${spare}" -ge 256 ] || spare=256
    memory=$((memory - spare)); [ "${memory}" -ge 256 ] || memory=256
    local line="NodeName=${name} NodeAddr=127.0.0.1 CPUs=${cpus}"
    if [ -n "${sockets}" ] && [ -n "${cores}" ] && [ -n "${threads}" ] \
            && [ $((sockets * cores * threads)) -eq "${cpus}" ]; then
        line+=" Sockets=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads}"
    fi
    echo "${line} RealMemory=${memory} State=UNKNOWN"
}

write_config() {
    local host
    host=$(hostname -s)
    mkdir -p "${dir}/etc" "${dir}/run" "${dir}/log" "${dir}/state" "${dir}/spool"
    chmod 755 "${dir}/etc" "${dir}/run" "${dir}/log"
    chmod 700 "${dir}/state" "${dir}/spool"
    cat > "${conf}.tmp" <<EOF
# Generated by tools/slurm_local.sh: a one-node cluster (controller and compute
# node on ${host}); everything lives in ${dir}.
ClusterName=gcftlocal
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${port}
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${socket}
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/run/slurmctld.pid
SlurmdPidFile=${dir}/run/slurmd.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${dir}/log/jobcomp.log
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
# Finished jobs leave squeue/scontrol after MinJobAge seconds; a small value
# also keeps "sbatch --wait" polling every 2 s instead of up to 32 s.
MinJobAge=4
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
$(node_line)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "${conf}.tmp" "${conf}"
    chmod 644 "${conf}"
}

start_munged() {
    if pid=$(running_pid munged); then log "munged already running (pid ${pid})"; return 0; fi
    getent passwd munge >/dev/null || die "there is no user munge (is the munge package installed?)"
    local mdir=${dir}/munge
    [ "${#socket}" -lt 100 ] || die "munge socket path too long (${#socket} chars): ${socket}; use a shorter GCFT_SLURM_DIR"
    mkdir -p "${mdir}"
    chown munge:munge "${mdir}"
    chmod 755 "${mdir}"  # clients need to reach the socket; the key itself is 0600
    runuser -u munge -- test -x "${mdir}" \
        || die "user munge cannot reach ${mdir}: make its parent directories searchable (chmod o+x) or set GCFT_SLURM_DIR"
    if [ ! -s "${mdir}/munge.key" ]; then
        log "creating a munge key ${mdir}/munge.key"
        rm -f "${mdir}/munge.key"
        runuser -u munge -- mungekey -c -k "${mdir}/munge.key"
    fi
    chown munge:munge "${mdir}/munge.key"
    chmod 600 "${mdir}/munge.key"
    rm -f "${socket}" "${socket}.lock"
    touch "${dir}/log/munged.log"
    chown munge:munge "${dir}/log/munged.log"
    runuser -u munge -- munged --key-file="${mdir}/munge.key" --socket="${socket}" \
        --pid-file="$(pid_file munged)" --log-file="${dir}/log/munged.log" \
        --seed-file="${mdir}/munged.seed" \
        || die "munged did not start, see ${dir}/log/munged.log"
    local i
    for ((i = 0; i < 50; i++)); do
        [ -S "${socket}" ] && running_pid munged >/dev/null && break
        sleep 0.2
    done
    munge -s gcft -S "${socket}" | unmunge -S "${socket}" >/dev/null \
        || die "munge does not work on ${socket}, see ${dir}/log/munged.log"
    log "munged started (pid $(running_pid munged))"
}

start_daemon() {  # start_daemon slurmctld|slurmd
    local name=$1 pid
    if pid=$(running_pid "${name}"); then log "${name} already running (pid ${pid})"; return 0; fi
    "${name}" -f "${conf}" || die "${name} did not start, see ${dir}/log/${name}.log"
    local i
    for ((i = 0; i < 50; i++)); do
        running_pid "${name}" >/dev/null && break
        sleep 0.2
    done
    pid=$(running_pid "${name}") || die "${name} exited, see ${dir}/log/${name}.log"
    log "${name} started (pid ${pid})"
}

wait_idle() {
    local node state="" waited=0
    node=$(hostname -s)
    while [ "${waited}" -lt "${timeout}" ]; do
        for daemon in "${daemons[@]}"; do
            running_pid "${daemon}" >/dev/null || die "${daemon} stopped; see the logs: $(log_paths)"
        done
        state=$(sinfo -h -n "${node}" -o '%t' 2>/dev/null | head -n 1 || true)
        case "${state}" in
            idle|mix|alloc|comp) return 0 ;;
            drain*|down*)
                # e.g. left drained by an earlier run: try to bring it back
                scontrol update NodeName="${node}" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
        waited=$((waited + 1))
    done
    die "node ${node} not idle after ${timeout} s (state: ${state:-unknown}); see the logs: $(log_paths)"
}

print_export() {
    echo "Point the Slurm commands at this cluster with:"
    echo "  export SLURM_CONF=${conf}"
}

do_start() {
    local all=1 daemon
    for daemon in "${daemons[@]}"; do running_pid "${daemon}" >/dev/null || all=""; done
    if [ -n "${all}" ] && [ -s "${conf}" ]; then
        log "already running (${dir})"
        print_export
        return 0
    fi
    install_packages
    mkdir -p "${dir}"
    [ "$(id -u)" -eq 0 ] || die "starting the cluster needs root (munged runs as user munge, Slurm as root)"
    [ -e "${dir}/.gitignore" ] || echo '*' > "${dir}/.gitignore"
    if ! running_pid slurmctld >/dev/null; then write_config; fi
    start_munged
    start_daemon slurmctld
    start_daemon slurmd
    log "waiting for node $(hostname -s) to be idle (up to ${timeout} s)"
    wait_idle
    sinfo
    log "logs: $(log_paths)"
    log "no accounting database: sacct is unavailable, use squeue and scontrol show job"
    print_export
}

stop_pid() {  # stop_pid <daemon>: TERM, then KILL after 10 s
    local name=$1 pid i
    pid=$(running_pid "${name}") || { log "${name} not running"; return 0; }
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        [ -d "/proc/${pid}" ] || break
        sleep 0.2
    done
    if [ -d "/proc/${pid}" ]; then
        log "${name} (pid ${pid}) still running, killing it"
        kill -KILL "${pid}" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$(pid_file "${name}")"
    log "${name} stopped (pid ${pid})"
}

do_stop() {
    if running_pid slurmctld >/dev/null && [ -s "${conf}" ]; then
        local jobs i
        jobs=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            log "cancelling jobs ${jobs}"
            # shellcheck disable=SC2086
            scancel ${jobs} 2>/dev/null || true
            for ((i = 0; i < 15; i++)); do
                [ -z "$(squeue -h -t R,CG -o '%A' 2>/dev/null || true)" ] && break
                sleep 1
            done
        fi
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
}

do_status() {
    local status=0 daemon pid
    echo "Slurm cluster in ${dir} (SLURM_CONF=${conf})"
    for daemon in "${daemons[@]}"; do
        if pid=$(running_pid "${daemon}"); then
            echo "  ${daemon}: running (pid ${pid})"
        else
            echo "  ${daemon}: not running"; status=3
        fi
    done
    if running_pid slurmctld >/dev/null && [ -s "${conf}" ]; then
        sinfo || status=1
        squeue || status=1
    fi
    echo "logs: $(log_paths)"
    return "${status}"
}

case "${action}" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
esac
