#!/usr/bin/env bash
# Slurm job runner with the run.pl calling convention (the cluster twin of utils/run.sh).
#
#   utils/slurm.sh [options] [JOB=1:N] <log> <command> [args...]
#
# Submits <command> as one job, or JOB=1..N as one array job (every "JOB" in
# the log path and the command becomes the task index), waits for it, and
# writes each task's log at the given path (command first, exit status last).
# Exits non-zero naming the failed tasks' logs. Ctrl-C cancels the job.
#
# Options (defaults from --config, then the command line):
#   --config FILE      key=value lines: partition, mem, num_threads, time,
#                      gpu_option (with {gpu} for the count), extra_args
#   --mem M  --num_threads N  --gpu N  --time T  --partition P
#   --max_jobs N       tasks of the array running at once (sbatch --array=...%N)
set -euo pipefail

config="" mem="" num_threads="" gpu=0 time_limit="" partition="" max_jobs="" extra_args=""
gpu_option="--gres=gpu:{gpu}"
read_config() {
    local key value
    while IFS='=' read -r key value; do
        key=${key%%#*}; key=${key// /}
        [ -z "${key}" ] && continue
        value=${value%%#*}; value=${value%"${value##*[![:space:]]}"}
        case "${key}" in
            partition) partition=${value} ;;
            mem) mem=${value} ;;
            num_threads) num_threads=${value} ;;
            time) time_limit=${value} ;;
            gpu_option) gpu_option=${value} ;;
            extra_args) extra_args=${value} ;;
            *) echo "$0: ${config}: unknown key ${key}" >&2; exit 2 ;;
        esac
    done < "$1"
}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config=$2; read_config "${config}"; shift 2 ;;
        --mem) args+=(mem "$2"); shift 2 ;;
        --num_threads) args+=(num_threads "$2"); shift 2 ;;
        --gpu) args+=(gpu "$2"); shift 2 ;;
        --time) args+=(time_limit "$2"); shift 2 ;;
        --partition) args+=(partition "$2"); shift 2 ;;
        --max_jobs) args+=(max_jobs "$2"); shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
# command-line options win over the config file, whatever their order
for ((i = 0; i < ${#args[@]}; i += 2)); do printf -v "${args[i]}" '%s' "${args[i + 1]}"; done
if [ $# -lt 2 ]; then
    echo "usage: $0 [options] [JOB=1:N] <log> <command> [args...]" >&2
    exit 2
fi

first=1 last=1 var=""
if [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}; shift
elif [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)$ ]]; then
    var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[2]}; shift
fi
log_template=$1
shift
command -v sbatch >/dev/null || { echo "$0: sbatch not found: is Slurm installed?" >&2; exit 1; }

# The command as one shell line, JOB replaced by the array index variable.
if [ $# -eq 1 ]; then command_line=$1; else command_line=$(printf '%q ' "$@"); fi
task_var='${SLURM_ARRAY_TASK_ID}'
if [ -n "${var}" ]; then
    command_line=${command_line//${var}/${task_var}}
    log_line=${log_template//${var}/${task_var}}
else
    log_line=${log_template}
fi
log_dir=$(dirname "${log_template}")
mkdir -p "${log_dir}/q"
name=$(basename "${log_template}" .log); name=${name//${var:-JOB}/}; name=${name//./_}
script=${log_dir}/q/${name}.sh
cat > "${script}" <<SCRIPT
#!/usr/bin/env bash
cd "$(pwd)"
log="${log_line}"
mkdir -p "\$(dirname "\${log}")"
{ echo "# ${command_line//\"/\\\"}"; echo "# started at \$(date) on \$(hostname), job \${SLURM_JOB_ID}"; } > "\${log}"
status=0
( ${command_line} ) >> "\${log}" 2>&1 || status=\$?
echo "# ended at \$(date) with status \${status}" >> "\${log}"
exit \${status}
SCRIPT
chmod +x "${script}"

sbatch_args=(--parsable --wait --job-name "${name}" --output "${log_dir}/q/${name}.%A_%a.out"
             --array "${first}-${last}${max_jobs:+%${max_jobs}}")
[ -n "${partition}" ] && sbatch_args+=(--partition "${partition}")
[ -n "${mem}" ] && sbatch_args+=(--mem "${mem}")
[ -n "${num_threads}" ] && sbatch_args+=(--cpus-per-task "${num_threads}")
[ -n "${time_limit}" ] && sbatch_args+=(--time "${time_limit}")
if [ "${gpu}" -gt 0 ] 2>/dev/null; then
    # shellcheck disable=SC2206
    sbatch_args+=(${gpu_option//\{gpu\}/${gpu}})
fi
# shellcheck disable=SC2206
[ -n "${extra_args}" ] && sbatch_args+=(${extra_args})

sbatch "${sbatch_args[@]}" "${script}" > "${log_dir}/q/${name}.jobid" &
sbatch_pid=$!
cancel() {
    local job
    job=$(head -n 1 "${log_dir}/q/${name}.jobid" 2>/dev/null || true)
    [ -n "${job}" ] && scancel "${job}" 2>/dev/null
    echo "$0: cancelled ${job:-the job}" >&2
    exit 130
}
trap cancel INT TERM
set +e
wait "${sbatch_pid}"
set -e

failed=()
for ((index = first; index <= last; index++)); do
    log=${log_template}
    [ -n "${var}" ] && log=${log_template//${var}/${index}}
    if ! tail -n 1 "${log}" 2>/dev/null | grep -q "with status 0$"; then
        failed+=("${log}")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    for log in "${failed[@]}"; do echo "$0: task failed, see ${log}" >&2; done
    exit 1
fi
