#!/usr/bin/env bash
# Download one corpus archive and unpack it into a directory (resumable).
#
#   scripts/download_corpus.sh [--md5 SUM] [--strip 1] <url> <dest_dir>
#
# The archive (.tar.gz, .tgz, .tar or .zip) goes to <dest_dir>/.downloads/ and is
# fetched again only where it stopped (curl -C -, or wget -c); --md5 checks it.
# It is unpacked into a scratch dir first and moved into <dest_dir> only when
# complete; --strip 1 drops the archive's top-level directory when it has just
# one (SLUE's zips hold slue-<corpus>/...). A
# <dest_dir>/.downloads/<archive>.done marker makes a rerun a no-op.
set -euo pipefail

md5=""
strip=0
while [ $# -gt 0 ]; do
    case "$1" in
        --md5) md5=$2; shift 2 ;;
        --strip) strip=$2; shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 2 ]; then
    echo "usage: $0 [--md5 SUM] [--strip 1] <url> <dest_dir>" >&2
    exit 2
fi
url=$1
dest=$2
name=${url##*/}
downloads=${dest}/.downloads
archive=${downloads}/${name}
if [ -e "${archive}.done" ]; then
    echo "$0: ${url} is already unpacked in ${dest}"
    exit 0
fi
mkdir -p "${downloads}"

echo "$0: downloading ${url} -> ${archive}"
if command -v curl > /dev/null; then
    # -C - resumes a partial file; on a complete one the server answers 416 (curl: 33 or 22)
    status=0
    curl --fail --location --retry 3 -C - -o "${archive}" "${url}" || status=$?
    if [ "${status}" -ne 0 ]; then
        if [ -s "${archive}" ] && { [ "${status}" -eq 33 ] || [ "${status}" -eq 22 ]; } \
                && curl --fail --silent --head --location -r "$(stat -c %s "${archive}")-" "${url}" \
                    2>/dev/null | grep -q " 416"; then
            echo "$0: ${archive} was complete already"
        else
            echo "$0: error: cannot download ${url} (curl exit ${status}); rerun to resume" >&2
            exit 1
        fi
    fi
else
    wget -c -O "${archive}" "${url}" || { echo "$0: error: cannot download ${url}" >&2; exit 1; }
fi
if [ -n "${md5}" ]; then
    actual=$(md5sum "${archive}" | cut -d' ' -f1)
    if [ "${actual}" != "${md5}" ]; then
        echo "$0: error: ${archive} has md5 ${actual}, expected ${md5}: delete it and rerun" >&2
        exit 1
    fi
fi

scratch=$(mktemp -d "${downloads}/unpack.XXXXXX")
trap 'rm -rf "${scratch}"' EXIT
echo "$0: unpacking ${archive}"
case "${name}" in
    *.zip) python3 -m zipfile -e "${archive}" "${scratch}" ;;
    *.tar.gz|*.tgz|*.tar) tar -xf "${archive}" -C "${scratch}" ;;
    *) echo "$0: error: unknown archive type: ${name}" >&2; exit 1 ;;
esac
src=${scratch}
if [ "${strip}" = 1 ]; then
    mapfile -t tops < <(find "${scratch}" -mindepth 1 -maxdepth 1)
    if [ "${#tops[@]}" -eq 1 ] && [ -d "${tops[0]}" ]; then
        src=${tops[0]}
    else
        echo "$0: ${name} has no single top-level directory: unpacked as it is"
    fi
fi
# Move every top-level entry; directories that exist already (e.g. LibriSpeech/
# from another archive) are merged one level down.
for entry in "${src}"/* "${src}"/.[!.]*; do
    [ -e "${entry}" ] || continue
    target=${dest}/${entry##*/}
    if [ -d "${entry}" ] && [ -d "${target}" ]; then
        for sub in "${entry}"/*; do
            [ -e "${sub}" ] || continue
            rm -rf "${target:?}/${sub##*/}"
            mv "${sub}" "${target}/"
        done
    else
        rm -rf "${target}"
        mv "${entry}" "${target}"
    fi
done
touch "${archive}.done"
echo "$0: ${url} unpacked into ${dest}"
