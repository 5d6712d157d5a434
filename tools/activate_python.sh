#!/usr/bin/env bash
# Activate the project's virtual environment (sourced by recipes' path.sh, as in ESPnet).
# shellcheck disable=SC1091
_gcft_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "${_gcft_tools}/venv/bin/activate" ]; then
    echo "tools/venv is missing: run 'make setup' (or tools/setup_venv.sh) first" >&2
    return 1 2>/dev/null || exit 1
fi
. "${_gcft_tools}/venv/bin/activate"
unset _gcft_tools
