# The job range of the run.pl calling convention, in one place for every runner
# (sourced by utils/run.sh and utils/slurm.sh, and by the Slurm job script).
#
#   job_range_parse "$1" && shift   # JOB=1:N, JOB=N or (no range) one job
#   log=$(job_substitute "${log_template}" "${index}")
#
# job_range_parse <arg>: when <arg> is VAR=a:b or VAR=a (decimal, leading zeros
# allowed: JOB=01:10 is 1..10), sets job_var, job_first and job_last and returns 0;
# otherwise sets job_var="" job_first=1 job_last=1 and returns 1 (the argument
# is not a range). An empty range (a > b) is an error: it exits with status 2
# instead of running nothing. Index 0 is accepted here; the recipes number
# jobs from 1, as ESPnet's run.pl, queue.pl and slurm.pl require.
#
# job_substitute <text> <index>: <text> with every occurrence of the job
# variable replaced by <index> (unchanged when there is no range).

job_range_parse() {
    job_var="" job_first=1 job_last=1
    if [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
        job_var=${BASH_REMATCH[1]}
        job_first=$((10#${BASH_REMATCH[2]}))
        job_last=$((10#${BASH_REMATCH[3]}))
    elif [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)$ ]]; then
        job_var=${BASH_REMATCH[1]}
        job_first=$((10#${BASH_REMATCH[2]}))
        job_last=${job_first}
    else
        return 1
    fi
    if [ "${job_first}" -gt "${job_last}" ]; then
        echo "$0: empty job range $1" >&2
        exit 2
    fi
    return 0
}

job_substitute() {
    local text=$1 index=$2
    if [ -n "${job_var}" ]; then echo "${text//${job_var}/${index}}"; else echo "${text}"; fi
}
