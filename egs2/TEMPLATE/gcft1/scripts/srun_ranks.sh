#!/usr/bin/env bash
# Start the ranks of a DDP training inside a Slurm job (sbatch --ntasks N): srun
# runs <command> once per task with torch's env:// variables taken from Slurm's
# (RANK, LOCAL_RANK, WORLD_SIZE; MASTER_ADDR = the job's first node), which
# ESPnet reads as it does torchrun's.
#
#   scripts/srun_ranks.sh <command> [args...]
#
# ESPnet's own --dist_launcher slurm assumes one task per node in this mode
# (it refuses 2 ranks on one node); these variables work for any layout.
set -euo pipefail
if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "$0: not inside a Slurm job (start it through utils/slurm.sh with --ntasks)" >&2
    exit 1
fi
MASTER_ADDR=$(scontrol show hostnames "${SLURM_JOB_NODELIST}" | head -n 1)
MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
export MASTER_ADDR MASTER_PORT
# shellcheck disable=SC2016
exec srun --kill-on-bad-exit=1 bash -c \
    'RANK=${SLURM_PROCID} LOCAL_RANK=${SLURM_LOCALID} WORLD_SIZE=${SLURM_NTASKS} exec "$@"' \
    srun_rank "$@"
