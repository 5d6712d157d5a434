#!/usr/bin/env bash
# Stage 1 of the Libri-light recipe: data/{train_10h,dev_clean,dev_other,test_clean,test_other}
# with utt2prev (the previous utterance of the same book chapter).
#   local/data.sh [--corpus_dir DIR] [--download true]
# train_10h = librispeech_finetuning/1h/{0..5}/{clean,other} + 9h/{clean,other};
# the evaluation sets are LibriSpeech's; text is that of the .trans.txt files.
set -euo pipefail
. ./path.sh
. ./db.sh

# <options>
corpus_dir=${LIBRILIGHT}  # [path] holds librispeech_finetuning/ and LibriSpeech/ (db.sh: LIBRILIGHT)
task=asr                 # [name] the target text (asr: the only task of this corpus)
download=false           # [true|false] true: download and unpack what is missing into --corpus_dir
librilight_url=https://dl.fbaipublicfiles.com/librilight/data  # [path] librispeech_finetuning.tgz (or a mirror)
librispeech_url=https://www.openslr.org/resources/12  # [path] LibriSpeech dev/test archives (or a mirror)
nj=4                     # [int >= 1] threads reading audio headers
# </options>
. utils/parse_options.sh
if [ "${task}" != asr ]; then
    echo "$0: --task ${task}: Libri-light has transcripts only (asr)" >&2
    exit 2
fi

archives=()
[ -d "${corpus_dir}/librispeech_finetuning" ] || archives+=("${librilight_url}/librispeech_finetuning.tgz")
for part in dev-clean dev-other test-clean test-other; do
    [ -d "${corpus_dir}/LibriSpeech/${part}" ] || archives+=("${librispeech_url}/${part}.tar.gz")
done
if [ "${#archives[@]}" -gt 0 ]; then
    if [ "${download}" = true ]; then
        # (gcft.sh checks the options before its first stage: no download then)
        [ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0
        for url in "${archives[@]}"; do
            scripts/download_corpus.sh "${url}" "${corpus_dir}"
        done
    else
        {
            echo "$0: ${corpus_dir} lacks part of the corpus. Download and unpack into it:"
            printf '    %s\n' "${archives[@]}"
            echo "(Libri-light: https://github.com/facebookresearch/libri-light, LibriSpeech:"
            echo "https://www.openslr.org/12), or rerun with --download true, or point"
            echo "--corpus_dir (db.sh: LIBRILIGHT) at a directory holding librispeech_finetuning/ and LibriSpeech/."
        } >&2
        exit 1
    fi
fi
[ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0  # gcft.sh's check before its first stage ends here
python3 -m espnet_gcft.bin.prepare_corpus --corpus librilight --corpus_dir "${corpus_dir}" \
    --out_dir data --nj "${nj}"
