# One writer per output, readers beside each other (sourced by gcft.sh).
#
# A run claims, before its first stage, what only it may write: the data and
# dump/raw dirs of its sets (stages 1-2), its variants' exp dirs (stages 6-8:
# exp/<variant>[_<tag>]) and its RESULTS (stage 8); it refuses to start, naming
# the holder, when another live run holds one of them. What a run's stages only
# read (the data and dump/raw dirs of a run that starts after stage 2) it
# shares: readers go on side by side, a reader waits while a writer holds it,
# and a writer refuses while a reader does. Steps that runs with different
# outputs may share (context texts and embeddings, collect-stats, the shared
# pretraining) are taken in turn: a run waits for the one writing them, then
# finds them up to date. A lock is flock(1) on <dir>/.locks/<name>.lock through
# a descriptor the run and all its jobs share, so it ends with the run's last
# process however the run ends (kill -9 of its process group included); the
# file names the last holder: pid, start time, host, dir (and "reading" for a
# reader). The kernel tears a SIGKILLed process down in its own time (a large
# Python process takes a moment), so for a while after `kill -9 -<pgid>` a job
# can still hold a lock whose named holder is gone: a run that meets a lock held
# for a holder no longer alive on this host waits up to --lock_grace seconds
# for it instead of refusing.
#
#   claim <output>        hold it (exclusive) for the whole run, or refuse (exit 3)
#   share <output>        hold it (shared) for the whole run, waiting for a writer
#   take_turn <output> / end_turn <output>   write a shared output after any other run

run_started=$(date '+%Y-%m-%dT%H:%M:%S')
run_host=$(hostname 2>/dev/null || uname -n)
lock_file() { echo "$(dirname "$1")/.locks/$(basename "$1").lock"; }
# open_lock <output>: open its lock file on a new descriptor, stored in lock_fd.
open_lock() {
    local lock
    lock=$(lock_file "$1")
    mkdir -p "$(dirname "${lock}")"
    exec {lock_fd}>>"${lock}"
}
# name_holder <output> [reading]: the holder line (lock_holder's format)
name_holder() {
    {
        printf 'pid %s, started %s, on %s, in %s\n' "$$" "${run_started}" "${run_host}" "${PWD}"
        [ -z "${2:-}" ] || echo "$2"
    } > "$(lock_file "$1")"
}
holder() { head -n 1 "$(lock_file "$1")" 2>/dev/null || echo "holder unknown"; }
# holder_gone <output>: the lock file names a holder on this host that is no longer running
holder_gone() { ${python} -m espnet_gcft.bin.lock_holder --gone --host "${run_host}" "$(lock_file "$1")"; }
# flock's exit code: 75 when another process holds the lock (-E), anything else
# is a filesystem that cannot lock (e.g. Lustre mounted with noflock)
lock_error() {
    echo "$0: cannot lock $(lock_file "$1") (flock exit code $2): this filesystem does not support flock" >&2
    exit 3
}
# lock_wait <output> <flock option...>: take the lock on lock_fd (-n: without waiting,
# -w S: waiting up to S seconds, none: as long as it takes; -s: shared); lock_code is
# 0 (taken) or 75 (another process holds it)
lock_wait() {
    local output=$1
    shift
    lock_code=0
    flock "$@" -E 75 "${lock_fd}" || lock_code=$?
    [ "${lock_code}" -eq 0 ] || [ "${lock_code}" -eq 75 ] || lock_error "${output}" "${lock_code}"
}
# try_lock <output> [-s]: open its lock and try it without waiting
try_lock() {
    open_lock "$1"
    lock_wait "$1" -n ${2:-}
}
claim() {
    try_lock "$1"
    if [ "${lock_code}" -eq 75 ] && holder_gone "$1"; then
        log "  $1: the run that held it ($(holder "$1")) is gone; waiting up to ${lock_grace} s for its last processes to exit"
        lock_wait "$1" -w "${lock_grace}"
    fi
    if [ "${lock_code}" -eq 75 ]; then
        local doing="written"
        grep -qx reading "$(lock_file "$1")" 2>/dev/null && doing="read"
        echo "$0: refusing to start: $1 is being ${doing} by another run ($(holder "$1")); wait for it, or give this run other outputs (--expdir, --tag, --dumpdir, --results)" >&2
        exit 3
    fi
    name_holder "$1"
}
share() {
    try_lock "$1" -s
    if [ "${lock_code}" -eq 75 ]; then
        log "  waiting for another run, which is writing $1 ($(holder "$1"))"
        lock_wait "$1" -s
    fi
    name_holder "$1" reading
}
declare -A turn_fd=()
take_turn() {
    try_lock "$1"
    if [ "${lock_code}" -eq 75 ]; then
        log "  waiting for another run, which is writing $1 ($(holder "$1"))"
        lock_wait "$1"
    fi
    name_holder "$1"
    turn_fd[$1]=${lock_fd}
}
end_turn() {
    local fd=${turn_fd[$1]}
    flock -u "${fd}"
    exec {fd}>&-
    unset "turn_fd[$1]"
}
