# A pool of background jobs, and Ctrl-C that stops them all (sourced by gcft.sh,
# sweep.sh and utils/run.sh).
#
#   pool_run <limit> <name> <command...>   start a job once fewer than <limit> run
#   pool_drain                             wait for every job; 1 if any failed
#   pool_wait_for <name...>                wait for the named jobs (the others run on); 1 if any job failed
#   pool_failed                            the names of the failed jobs (in order of ending)
#   pool_done_hook=<function>              called as <function> <name> <status> when a job ends
#   trap_interrupts                        Ctrl-C / SIGTERM: SIGTERM to every descendant, exit 130/143
#   last_error_line <log>                  the line of a job's log that says why it failed

declare -A pool_pids=()
pool_failed=()
pool_done_hook=""

pool_wait_one() {
    local done_pid name status
    set +e; wait -n -p done_pid; status=$?; set -e
    for name in "${!pool_pids[@]}"; do
        if [ "${pool_pids[${name}]}" = "${done_pid}" ]; then
            unset "pool_pids[${name}]"
            [ "${status}" -eq 0 ] || pool_failed+=("${name}")
            [ -z "${pool_done_hook}" ] || "${pool_done_hook}" "${name}" "${status}"
        fi
    done
}

pool_run() {
    local limit=$1 name=$2
    shift 2
    while [ "${#pool_pids[@]}" -ge "${limit}" ]; do pool_wait_one; done
    "$@" &
    pool_pids[${name}]=$!
}

pool_wait_for() {
    local name
    for name in "$@"; do
        while [ -n "${pool_pids[${name}]:-}" ]; do pool_wait_one; done
    done
    [ "${#pool_failed[@]}" -eq 0 ]
}

pool_drain() {
    while [ "${#pool_pids[@]}" -gt 0 ]; do pool_wait_one; done
    [ "${#pool_failed[@]}" -eq 0 ]
}

# Ctrl-C (SIGINT to the whole process group) or SIGTERM: stop every job this
# script started. Background jobs of a script ignore SIGINT (bash starts them so),
# so a Slurm runner under a pool job would never see the Ctrl-C and its jobs
# would keep running; each descendant gets SIGTERM instead, on which
# utils/slurm.sh cancels its job with scancel.
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        descendants "${child}"
        echo "${child}"
    done
}
on_interrupt() {
    trap '' INT TERM
    if declare -F log > /dev/null; then log "Interrupted: stopping the jobs of this run"; fi
    local pids
    pids=$(descendants $$)
    # shellcheck disable=SC2086
    [ -z "${pids}" ] || kill -TERM ${pids} 2>/dev/null || true
    wait 2>/dev/null || true
    exit "$1"
}
trap_interrupts() {
    trap 'on_interrupt 130' INT
    trap 'on_interrupt 143' TERM
}

# last_error_line <log>: why a job failed, from its log: the last line that reads
# as an error (a Python exception, "error:", "Error", "failed", "No such"), else
# the last line the job printed; the runners' own "# ..." lines do not count.
last_error_line() {
    awk '
        /^# / { next }
        NF { last = $0 }
        /([A-Za-z]+(Error|Exception)(:|$)|[Ee]rror:|^Error|[Ff]ailed|No such|not found|Killed)/ { error = $0 }
        END { line = (error != "" ? error : last); gsub(/^[ \t]+|[ \t]+$/, "", line); print line }
    ' "$1" 2>/dev/null
}
