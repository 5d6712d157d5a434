#!/usr/bin/env bash
# Parse "--name value" (or "--name=value") command-line options into shell variables.
#
# Source it after declaring the options, each on one line of the calling script
# between the markers "# <options>" and "# </options>":
#
#   # <options>
#   # == General ==
#   stage=1          # [int 1-8] first stage to run
#   nj=4             # [int >= 1] parallel jobs
#   # </options>
#   . utils/parse_options.sh
#
# Each --name must be one of the declared variables (dashes count as
# underscores); --help prints the list with defaults and meanings, generated
# from the declarations themselves, so help and options cannot drift apart.
# The bracket that opens a meaning is the option's spec: the values it allows
# (espnet_gcft/recipe/options.py); once parsed, every value is checked against
# its spec, and a value it refuses stops the script with one line naming the
# option, the value and the spec (exit status 2), before the script does any
# work. An unknown option or a missing value prints the help and exits with
# status 2. Positional arguments are left in "$@". gcft.sh runs local/data.sh
# with GCFT_CHECK_ONLY=1 before its first stage: a local/data.sh checks its
# options and its corpus, then stops there (exit status 0) without writing.

__gcft_help() {
    local script=$1
    echo "Usage: ${script} [options]"
    awk '
        /^# <options>/ { inside = 1; next }
        /^# <\/options>/ { inside = 0 }
        !inside { next }
        /^# == .* ==/ { sub(/^# == /, ""); sub(/ ==.*/, ""); printf "\n%s:\n", $0; next }
        /^[A-Za-z_][A-Za-z0-9_]*=/ {
            name = $0; sub(/=.*/, "", name)
            value = $0; sub(/^[^=]*=/, "", value)
            meaning = ""
            if (match(value, /[ \t]+# /)) { meaning = substr(value, RSTART + RLENGTH); value = substr(value, 1, RSTART - 1) }
            gsub(/[ \t]+$/, "", value)
            printf "  --%-22s %s (default: %s)\n", name, meaning, value
        }
    ' "${script}"
}

# The declared names: only these are options (a shell variable such as HOME is not).
__gcft_declared=" $(awk '
    /^# <options>/ { inside = 1; next }
    /^# <\/options>/ { inside = 0 }
    inside && /^[A-Za-z_][A-Za-z0-9_]*=/ { sub(/=.*/, ""); printf "%s ", $0 }
' "$0")"
if [ "${__gcft_declared}" = " " ]; then
    echo "$0: no options declared between '# <options>' and '# </options>'" >&2
    exit 2
fi

__gcft_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            __gcft_help "$0"
            exit 0
            ;;
        --*=*)
            __gcft_name=${1%%=*}; __gcft_value=${1#*=}; shift
            ;;
        --*)
            __gcft_name=$1
            if [ $# -lt 2 ]; then
                __gcft_help "$0" >&2
                echo "$0: option $1 needs a value" >&2
                exit 2
            fi
            __gcft_value=$2; shift 2
            ;;
        *)
            __gcft_args+=("$1"); shift; continue
            ;;
    esac
    __gcft_name=${__gcft_name#--}
    __gcft_name=${__gcft_name//-/_}
    if ! [[ "${__gcft_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ "${__gcft_declared}" != *" ${__gcft_name} "* ]]; then
        __gcft_help "$0" >&2
        echo "$0: unknown option --${__gcft_name}" >&2
        exit 2
    fi
    printf -v "${__gcft_name}" '%s' "${__gcft_value}"
done
set -- "${__gcft_args[@]+"${__gcft_args[@]}"}"
if ! command -v "${python:-python3}" > /dev/null; then  # (the check below runs it)
    echo "$0: --python ${python}: no such command; allowed: [command] (the python interpreter)" >&2
    exit 2
fi
__gcft_values=()
for __gcft_name in ${__gcft_declared}; do __gcft_values+=("${__gcft_name}=${!__gcft_name}"); done
"${python:-python3}" -m espnet_gcft.bin.check_options --script "$0" "${__gcft_values[@]}" || exit 2
unset __gcft_args __gcft_name __gcft_value __gcft_declared __gcft_values
