# Job runners of the recipes (sourced by gcft.sh): "local" runs on this machine
# (utils/run.sh), "slurm" submits array jobs with sbatch (utils/slurm.sh, defaults
# in the recipe's conf/slurm.conf). Pick one with cmd_backend=slurm ./run.sh ...
cmd_backend=${cmd_backend:-local}

if [ "${cmd_backend}" = local ]; then
    export train_cmd="utils/run.sh"
    export cuda_cmd="utils/run.sh"
    export decode_cmd="utils/run.sh"
    export gen_cmd="utils/run.sh"
    export embed_cmd="utils/run.sh"
elif [ "${cmd_backend}" = slurm ]; then
    export train_cmd="utils/slurm.sh --config conf/slurm.conf"
    export cuda_cmd="utils/slurm.sh --config conf/slurm.conf"
    export decode_cmd="utils/slurm.sh --config conf/slurm.conf"
    export gen_cmd="utils/slurm.sh --config conf/slurm.conf"
    export embed_cmd="utils/slurm.sh --config conf/slurm.conf"
else
    echo "cmd.sh: unknown cmd_backend=${cmd_backend} (local or slurm)" >&2
    return 1
fi
