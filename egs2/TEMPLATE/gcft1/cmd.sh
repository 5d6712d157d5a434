# Job runners of the recipes (sourced by gcft.sh), all with the calling
# convention of ESPnet's run.pl: <runner> [options] [JOB=1:N] <log> <command>.
# Pick one with cmd_backend=... ./run.sh ...:
#   local  (default) runs on this machine (utils/run.sh)
#   slurm  submits array jobs with sbatch (utils/slurm.sh, defaults in the
#          recipe's conf/slurm.conf)
#   any other value is taken as the runner command itself, e.g. ESPnet's own
#          cmd_backend="utils/queue.pl --config conf/queue.conf" (the recipes
#          number jobs from 1, as run.pl/queue.pl/slurm.pl require)
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local) runner="utils/run.sh" ;;
    slurm) runner="utils/slurm.sh --config conf/slurm.conf" ;;
    *) runner=${cmd_backend} ;;
esac
if ! command -v "${runner%% *}" >/dev/null 2>&1; then
    echo "cmd.sh: cmd_backend=${cmd_backend}: neither local, slurm nor a runner command that exists" >&2
    return 1
fi
export train_cmd="${runner}"
export cuda_cmd="${runner}"
export decode_cmd="${runner}"
export gen_cmd="${runner}"
export embed_cmd="${runner}"
unset runner
