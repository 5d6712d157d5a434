#!/usr/bin/env bash
# Local job runner with the run.pl calling convention.
#
#   utils/run.sh [options] [JOB=1:N] <log> <command> [args...]
#
# Runs <command> once, or once per JOB=1..N with every "JOB" in the log path and
# in the command replaced by the job index, at most --max_jobs at a time. Each
# log starts with the command and ends with its exit status. Exits non-zero if
# any job failed, naming each failed job's log.
#
# Options (the resource options are accepted so that recipes can pass the same
# ones to utils/slurm.sh; locally they have no effect):
#   --max_jobs N      jobs run in parallel (default: number of cores)
#   --gpu N --mem M --num_threads N --time T --ntasks N --nodes N   accepted, ignored
set -euo pipefail

max_jobs=$(nproc 2>/dev/null || echo 1)
while [ $# -gt 0 ]; do
    case "$1" in
        --max_jobs) max_jobs=$2; shift 2 ;;
        --gpu|--mem|--num_threads|--time|--partition|--ntasks|--nodes) shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 2 ]; then
    echo "usage: $0 [--max_jobs N] [JOB=1:N] <log> <command> [args...]" >&2
    exit 2
fi

# shellcheck source=utils/job_range.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_range.sh"
if job_range_parse "$1"; then shift; fi
[ $# -ge 2 ] || { echo "usage: $0 [--max_jobs N] [JOB=1:N] <log> <command> [args...]" >&2; exit 2; }
first=${job_first} last=${job_last}
log_template=$1
shift

quote_args() {  # print the arguments as one shell-quoted command line
    local out="" arg
    for arg in "$@"; do out+="$(printf '%q' "${arg}") "; done
    echo "${out% }"
}

substitute() { job_substitute "$@"; }

run_one() {
    local index=$1 log command
    shift
    log=$(substitute "${log_template}" "${index}")
    mkdir -p "$(dirname "${log}")"
    local args=() arg
    for arg in "$@"; do args+=("$(substitute "${arg}" "${index}")"); done
    # The command line as given: a single argument is a shell snippet (pipes etc.).
    if [ "${#args[@]}" -eq 1 ]; then command=${args[0]}; else command=$(quote_args "${args[@]}"); fi
    {
        echo "# ${command}"
        echo "# started at $(date)"
    } > "${log}"
    local status=0
    ( bash -c "${command}" ) >> "${log}" 2>&1 || status=$?
    {
        echo "# ended at $(date) with status ${status}"
    } >> "${log}"
    return "${status}"
}

# shellcheck source=scripts/lib/jobs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/jobs.sh"
trap_interrupts
for ((index = first; index <= last; index++)); do
    pool_run "${max_jobs}" "${index}" run_one "${index}" "$@"
done
if ! pool_drain; then
    for index in $(printf '%s\n' "${pool_failed[@]}" | sort -n); do
        log=$(substitute "${log_template}" "${index}")
        reason=$(last_error_line "${log}")
        echo "$0: job ${index} failed: ${reason:-(no error line)} (log: ${log})" >&2
        [ -z "${GCFT_FAILED_JOBS:-}" ] || printf '%s\t%s\n' "${log}" "${reason}" >> "${GCFT_FAILED_JOBS}"
    done
    exit 1
fi
