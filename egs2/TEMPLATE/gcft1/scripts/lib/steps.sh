# Steps that skip when their output is up to date (sourced by gcft.sh).
#
# An output <dir>/<name> made by a step has a stamp <dir>/.<name>.stamp holding the
# options that made it (step_key). A step is up to date (fresh) when its output
# is newer than every input and its stamp holds the same options, so a changed
# option redoes exactly the steps it feeds. An output is stamped only once it
# is complete: a step cut short by a kill or a full disk is redone.
#
#   key=$(step_key "pooling=${pooling}" "file:${config}")
#   run_step "${out}/emb.scp" "${key}" "${inputs[@]}" -- <command...>

# up_to_date <output> <inputs...>: the output exists and is newer than every input.
up_to_date() {
    local output=$1 input
    shift
    [ -e "${output}" ] || return 1
    for input in "$@"; do
        [ -e "${input}" ] || continue
        [ "${input}" -nt "${output}" ] && return 1
    done
    return 0
}

# stamp_file <output>: <dir>/.<name>.stamp (a name that starts with a dot keeps it).
stamp_file() {
    local name
    name=$(basename "$1")
    echo "$(dirname "$1")/${name/#[^.]/.${name:0:1}}.stamp"
}

# step_key <words...>: one line per word; "file:<path>" stands for the file's
# content (hashed), so an edited config changes the key.
step_key() {
    local word path
    for word in "$@"; do
        if [[ "${word}" == file:* ]]; then
            path=${word#file:}
            if [ -f "${path}" ]; then
                echo "${word} $(sha256sum < "${path}" | cut -c1-16)"
            else
                echo "${word} absent"
            fi
        else
            echo "${word}"
        fi
    done
}

# fresh <output> <key> <inputs...>: up to date and made with the same options.
fresh() {
    local output=$1 key=$2 stamp
    shift 2
    up_to_date "${output}" "$@" || return 1
    stamp=$(stamp_file "${output}")
    [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${key}" ]
}

# write_stamp <output> <key>
write_stamp() { printf '%s\n' "$2" > "$(stamp_file "$1")"; }

# run_step <output> <key> <inputs...> -- <command...>: the command, then the stamp,
# unless the output is fresh (logged as "<output> is up to date"; a .done
# sentinel is named by its dir). Returns 0 when it skipped or ran.
run_step() {
    local output=$1 key=$2 inputs=() shown
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do inputs+=("$1"); shift; done
    shift
    shown=${output}
    [ "$(basename "${output}")" != .done ] || shown=$(dirname "${output}")
    if fresh "${output}" "${key}" "${inputs[@]+"${inputs[@]}"}"; then
        log "  ${shown} is up to date"
        return 0
    fi
    "$@"
    write_stamp "${output}" "${key}"
}
