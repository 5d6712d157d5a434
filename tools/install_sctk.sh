#!/usr/bin/env bash
# Install NIST sclite from Debian's `sctk` package and print the sclite path.
# Debian puts sclite off PATH (it runs as `sctk sclite ...`); the scoring code
# finds it by itself, so nothing needs to be added to PATH.
set -euo pipefail

find_sclite() {
    command -v sclite 2>/dev/null && return 0
    if command -v dpkg >/dev/null 2>&1 && dpkg -s sctk >/dev/null 2>&1; then
        dpkg -L sctk | grep -E '/sclite$' | head -n 1 && return 0
    fi
    return 1
}

if path=$(find_sclite); then
    echo "sclite: ${path}"
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian package sctk ..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sctk >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sctk >/dev/null
    fi
    path=$(find_sclite) || { echo "sctk installed but sclite not found" >&2; exit 1; }
    echo "sclite: ${path}"
    exit 0
fi
cat >&2 <<'MSG'
sclite is not installed and this script cannot install it (needs root and apt-get).
Install it yourself, e.g. `sudo apt-get install sctk` on Debian/Ubuntu, or build
SCTK from source and put `sclite` on PATH. Without it, scoring falls back to
jiwer (same WER, no sclite report) and says so.
MSG
exit 1
