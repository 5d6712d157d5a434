#!/usr/bin/env bash
# Regenerate the mini corpus audio from local/corpus/corpus.tsv with espeak-ng.
#
#   local/corpus/synthesize.sh [corpus.tsv] [out_dir]
#
# Needs Debian's espeak-ng and sox (apt-get install espeak-ng sox). Each
# utterance is spoken with its session's voice, resampled to 16 kHz, 16 bit,
# and stored as FLAC in out_dir (default: local/corpus/audio). The committed
# FLAC files were made with this script; rerunning it is only needed after a
# change of corpus.tsv.
set -euo pipefail

corpus=${1:-local/corpus/corpus.tsv}
out_dir=${2:-local/corpus/audio}
for tool in espeak-ng sox; do
    command -v "${tool}" >/dev/null || { echo "$0: ${tool} is required" >&2; exit 1; }
done
mkdir -p "${out_dir}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

# voice -> words per minute, so voices differ in pace as well as timbre
declare -A speed=([en-us]=180 [en-gb]=165 [en-gb-x-rp]=185 [en-us+f3]=172)
count=0
tail -n +2 "${corpus}" | while IFS=$'\t' read -r utt voice _ _ text _; do
    # the spoken words: the tagged text without TYPE FILL / SEP markers
    words=$(echo "${text}" | sed -E 's/\b(PLACE|QUANT|ORG|WHEN|NORP|PERSON|LAW) FILL //g; s/ SEP\b//g')
    espeak-ng -v "${voice}" -s "${speed[${voice}]:-160}" -w "${tmp}/x.wav" "${words}"
    # trim leading and trailing silence; a moderate level keeps the FLAC files small
    sox "${tmp}/x.wav" -r 16000 -b 16 -c 1 -C 8 "${out_dir}/${utt}.flac" \
        silence 1 0.02 0.1% reverse silence 1 0.02 0.1% reverse pad 0.1 0.1 gain -n -18
    count=$((count + 1))
done
echo "wrote $(ls "${out_dir}" | wc -l) files to ${out_dir}"
