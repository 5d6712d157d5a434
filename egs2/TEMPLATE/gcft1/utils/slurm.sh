#!/usr/bin/env bash
# Slurm job runner with the run.pl calling convention (the cluster twin of utils/run.sh).
#
#   utils/slurm.sh [options] [JOB=1:N] <log> <command> [args...]
#
# Submits <command> as one job, or JOB=1..N as one
# array job (every "JOB" in the log path and the command becomes the task
# index), waits for it (sbatch --wait), and writes each task's log at the given
# path (command first, exit status last), as utils/run.sh does. A single
# <command> argument is a shell snippet (pipes etc.), several are one command.
# The job runs in the current directory with the caller's environment (PATH,
# venv: sbatch --export=ALL). Exits non-zero naming the failed tasks' logs and the
# line of each that says why (also appended to $GCFT_FAILED_JOBS, as utils/run.sh does).
# Ctrl-C (SIGINT) or SIGTERM cancels the job with scancel.
# The job script and Slurm's own output (e.g. "CANCELLED DUE TO TIME LIMIT")
# go to <log dir>/q/.
#
# Options (defaults from --config, then the command line):
#   --config FILE      key=value lines: partition, mem, num_threads, time,
#                      gpu_option (with {gpu} for the count), max_jobs,
#                      extra_args (see conf/slurm.conf)
#   --mem M  --num_threads N  --gpu N  --time T  --partition P
#   --max_jobs N       tasks of the array running at once (sbatch --array=...%N)
#   --ntasks N --nodes M  tasks and nodes of each job, for a command that starts
#                      its own tasks with srun (DDP training)
set -euo pipefail

config="" mem="" num_threads="" gpu=0 time_limit="" partition="" max_jobs="" extra_args="" ntasks="" nodes=""
gpu_option="--gres=gpu:{gpu}"
read_config() {
    local key value
    [ -r "$1" ] || { echo "$0: cannot read config $1" >&2; exit 2; }
    while IFS='=' read -r key value || [ -n "${key}" ]; do
        key=${key%%#*}; key=${key//[[:space:]]/}
        [ -z "${key}" ] && continue
        value=${value%%#*}
        value=${value#"${value%%[![:space:]]*}"}; value=${value%"${value##*[![:space:]]}"}
        case "${key}" in
            partition) partition=${value} ;;
            mem) mem=${value} ;;
            num_threads) num_threads=${value} ;;
            time) time_limit=${value} ;;
            gpu_option) gpu_option=${value} ;;
            extra_args) extra_args=${value} ;;
            max_jobs) max_jobs=${value} ;;
            *) echo "$0: ${config}: unknown key ${key}" >&2; exit 2 ;;
        esac
    done < "$1"
}
usage() {
    echo "usage: $0 [options] [JOB=1:N] <log> <command> [args...]" >&2
    exit 2
}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config|--mem|--num_threads|--gpu|--time|--partition|--max_jobs|--ntasks|--nodes)
            [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; } ;;&
        --config) config=$2; read_config "${config}"; shift 2 ;;
        --mem) args+=(mem "$2"); shift 2 ;;
        --num_threads) args+=(num_threads "$2"); shift 2 ;;
        --gpu) args+=(gpu "$2"); shift 2 ;;
        --time) args+=(time_limit "$2"); shift 2 ;;
        --partition) args+=(partition "$2"); shift 2 ;;
        --max_jobs) args+=(max_jobs "$2"); shift 2 ;;
        --ntasks) args+=(ntasks "$2"); shift 2 ;;
        --nodes) args+=(nodes "$2"); shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
# command-line options win over the config file, whatever their order
for ((i = 0; i < ${#args[@]}; i += 2)); do printf -v "${args[i]}" '%s' "${args[i + 1]}"; done
[ $# -ge 2 ] || usage

# shellcheck source=utils/job_range.sh
job_range_sh=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/job_range.sh
. "${job_range_sh}"
# shellcheck source=scripts/lib/jobs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/jobs.sh"  # last_error_line
if job_range_parse "$1"; then shift; fi
[ $# -ge 2 ] || usage
first=${job_first} last=${job_last} var=${job_var}
log_template=$1
shift
command -v sbatch >/dev/null || { echo "$0: sbatch not found: is Slurm installed?" >&2; exit 1; }

substitute() { job_substitute "$@"; }

# Paths in the job script are absolute, so the job does not depend on where
# Slurm starts it; the job itself runs in the current directory.
log_dir=$(dirname "${log_template}")
mkdir -p "${log_dir}/q"
log_dir=$(cd "${log_dir}" && pwd)
name=$(basename "${log_template}" .log); [ -n "${var}" ] && name=${name//${var}/}
name=${name//[^A-Za-z0-9_-]/_}; name=${name%%_}; name=${name:-job}
script=${log_dir}/q/${name}.sh
jobid_file=${log_dir}/q/${name}.jobid

# The job script: the index replaces the job variable in the log path and in
# each argument at run time, exactly as utils/run.sh does it.
{
    echo "#!/usr/bin/env bash"
    echo "# written by utils/slurm.sh; submitted with sbatch --array ${first}-${last}"
    printf 'cd %q || exit 1\n' "$(pwd)"
    printf '. %q\n' "${job_range_sh}"
    printf 'job_var=%q\n' "${var}"
    printf 'log_template=%q\n' "${log_template}"
    printf 'args=('; printf ' %q' "$@"; printf ' )\n'
    cat <<'SCRIPT'
index=${SLURM_ARRAY_TASK_ID:-1}
substitute() { job_substitute "$1" "${index}"; }
log=$(substitute "${log_template}")
cmd=()
for arg in "${args[@]}"; do cmd+=("$(substitute "${arg}")"); done
if [ "${#cmd[@]}" -eq 1 ]; then
    command=${cmd[0]}
else
    command=$(printf '%q ' "${cmd[@]}"); command=${command% }
fi
mkdir -p "$(dirname "${log}")"
{
    echo "# ${command}"
    echo "# started at $(date) on $(hostname), job ${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}}_${index}"
} > "${log}"
status=0
( bash -c "${command}" ) >> "${log}" 2>&1 || status=$?
echo "# ended at $(date) with status ${status}" >> "${log}"
exit "${status}"
SCRIPT
} > "${script}"
chmod +x "${script}"

# Remove the logs of an earlier run: a stale "status 0" must not pass for this one.
for ((index = first; index <= last; index++)); do
    rm -f "$(substitute "${log_template}" "${index}")"
done

sbatch_args=(--parsable --wait --export=ALL --chdir "$(pwd)" --job-name "${name}"
             --output "${log_dir}/q/${name}.%A_%a.out"
             --array "${first}-${last}${max_jobs:+%${max_jobs}}")
[ -n "${partition}" ] && sbatch_args+=(--partition "${partition}")
[ -n "${mem}" ] && sbatch_args+=(--mem "${mem}")
[ -n "${num_threads}" ] && sbatch_args+=(--cpus-per-task "${num_threads}")
# tasks of one job (a DDP training whose command starts them with srun)
[ -n "${ntasks}" ] && sbatch_args+=(--ntasks "${ntasks}")
[ -n "${nodes}" ] && sbatch_args+=(--nodes "${nodes}")
[ -n "${time_limit}" ] && sbatch_args+=(--time "${time_limit}")
if [ "${gpu}" -gt 0 ] 2>/dev/null; then
    # shellcheck disable=SC2206
    sbatch_args+=(${gpu_option//\{gpu\}/${gpu}})
fi
# shellcheck disable=SC2206
[ -n "${extra_args}" ] && sbatch_args+=(${extra_args})

job_id() {  # the job id printed by sbatch --parsable ("id" or "id;cluster")
    local id
    id=$(head -n 1 "${jobid_file}" 2>/dev/null || true)
    echo "${id%%;*}"
}
: > "${jobid_file}"
sbatch "${sbatch_args[@]}" "${script}" > "${jobid_file}" &
sbatch_pid=$!
cancel() {
    trap '' INT TERM
    local job="" i
    # a signal right after submission: wait (briefly) for the job id
    for ((i = 0; i < 50; i++)); do
        job=$(job_id)
        [ -n "${job}" ] && break
        kill -0 "${sbatch_pid}" 2>/dev/null || break
        sleep 0.2
    done
    if [ -n "${job}" ]; then
        scancel "${job}" 2>/dev/null || true
        echo "$0: cancelled job ${job} (${log_template})" >&2
    else
        echo "$0: interrupted before the job was submitted (${log_template})" >&2
    fi
    # sbatch --wait polls the controller: once the job is cancelled there is
    # nothing left to wait for, so do not let its polling delay the exit.
    kill "${sbatch_pid}" 2>/dev/null || true
    for ((i = 0; i < 10; i++)); do
        kill -0 "${sbatch_pid}" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${sbatch_pid}" 2>/dev/null || true
    wait "${sbatch_pid}" 2>/dev/null || true
    exit "$1"
}
trap 'cancel 130' INT
trap 'cancel 143' TERM
sbatch_status=0
wait "${sbatch_pid}" || sbatch_status=$?
job=$(job_id)
if [ -z "${job}" ]; then
    echo "$0: sbatch failed (status ${sbatch_status}) for ${log_template}" >&2
    exit 1
fi

# A log is done when its last line is the exit status; on a shared file system
# it may show up a little after the job ended, so wait a few seconds for it.
ended() { tail -n 1 "$1" 2>/dev/null | grep -q "^# ended at .* with status [0-9]*$"; }
deadline=$((SECONDS + 15))
failed=()
for ((index = first; index <= last; index++)); do
    log=$(substitute "${log_template}" "${index}")
    while ! ended "${log}" && [ "${SECONDS}" -lt "${deadline}" ]; do sleep 1; done
    if ! tail -n 1 "${log}" 2>/dev/null | grep -q "with status 0$"; then
        failed+=("${index}")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    for index in "${failed[@]}"; do
        log=$(substitute "${log_template}" "${index}")
        if ended "${log}"; then
            reason=$(last_error_line "${log}")
            echo "$0: task ${index} of job ${job} failed: ${reason:-(no error line)} (log: ${log})" >&2
        else
            reason="did not finish: $(last_error_line "${log_dir}/q/${name}.${job}_${index}.out")"
            echo "$0: task ${index} of job ${job} ${reason} (log: ${log} and ${log_dir}/q/${name}.${job}_${index}.out)" >&2
        fi
        [ -z "${GCFT_FAILED_JOBS:-}" ] || printf '%s\t%s\n' "${log}" "${reason}" >> "${GCFT_FAILED_JOBS}"
    done
    exit 1
fi
if [ "${sbatch_status}" -ne 0 ]; then
    # every task logged status 0: trust the logs (sbatch --wait also fails when
    # it loses track of a finished job)
    echo "$0: warning: sbatch --wait exited with status ${sbatch_status} for job ${job}, but every task succeeded" >&2
fi
