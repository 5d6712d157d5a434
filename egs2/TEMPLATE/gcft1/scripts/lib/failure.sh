# What a failed stage says on the terminal (sourced by gcft.sh; set current_stage
# as each stage starts).
#
# - A job that failed under a runner (utils/run.sh, utils/slurm.sh) is named with
#   its log's error line: the runners append "<log>\t<error line>" to
#   $GCFT_FAILED_JOBS, and the stage's failure line repeats the last of them.
# - A full disk says so in one line, naming the stage and the output dir whose
#   filesystem filled up: one that is (nearly) full now, or one holding a log of
#   this run that reports ENOSPC (a failed checkpoint save removes its temporary
#   file, so the space may be back by the time we look). Nothing is stamped
#   before it is complete and checkpoints are renamed into place, so after space
#   is freed the same command redoes the torn step and keeps everything made
#   before it.

current_stage=""
# (made by the first failed job, removed on exit: a run killed with SIGKILL, where no
# trap runs, leaves nothing behind unless a job of it had failed; the pid keeps it unique)
GCFT_FAILED_JOBS="${TMPDIR:-/tmp}/gcft_failed_jobs.$$"
rm -f "${GCFT_FAILED_JOBS}"
export GCFT_FAILED_JOBS

# on_exit <exit code> <dirs...>: the trap on EXIT.
on_exit() {
    local rc=$1 dir avail mount failed log_path reason
    shift
    failed=$(tail -n 1 "${GCFT_FAILED_JOBS}" 2>/dev/null || true)
    rm -f "${GCFT_FAILED_JOBS}"
    # 2: a bad option; 3: refused or cannot lock; 130/143: interrupted (on_interrupt said so)
    case "${rc}" in 0|2|3|130|143) return 0 ;; esac
    [ -n "${current_stage}" ] || return 0
    for dir in "$@"; do
        [ -d "${dir}" ] || continue
        read -r avail mount < <(df -Pk "${dir}" 2>/dev/null | awk 'NR == 2 {print $4, $6}') || continue
        # (find may also hit an unreadable dir, e.g. a mount point's lost+found: only its output counts)
        if [ "${avail:-${full_disk_kb}}" -lt "${full_disk_kb}" ] || [ -n "$(find "${dir}" -name '*.log' \
                -newermt "${run_started/T/ }" -exec grep -qs "No space left on device" {} \; -print -quit 2>/dev/null)" ]; then
            echo "$0: stage ${current_stage} failed: no space left on the filesystem of ${dir} (${mount}: ${avail} KiB free now); free space there and run the same command again" >&2
            return 0
        fi
    done
    if [ -n "${failed}" ]; then
        log_path=${failed%%$'\t'*}
        reason=${failed#*$'\t'}
        echo "$0: stage ${current_stage} failed: ${reason:-(no error line in its log)} (log: ${log_path})" >&2
    else
        echo "$0: stage ${current_stage} failed (exit code ${rc}); its error is above" >&2
    fi
}
