#!/usr/bin/env bash
# Stage 1 of the mini recipe: Kaldi data dirs and utt2prev from the embedded corpus.
#   local/data.sh [--task asr|ner|sentiment] [--max_sessions N]
set -euo pipefail
. ./path.sh
. ./db.sh

# <options>
task=asr                 # [asr|ner|sentiment] the target text
max_sessions=0           # [int >= 0] keep only the first N sessions per split (0: all; for quick tests)
# </options>
. utils/parse_options.sh
[ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0  # gcft.sh's check before its first stage ends here

python3 local/data_prep.py --corpus_dir "${MINI_GCFT}" --task "${task}" --out_dir data \
    --max_sessions "${max_sessions}"
# ner: the sets with the entity sessions, under their own names (data/train etc. stay as they are)
if [ "${task}" = ner ]; then
    sets="train_ner dev_ner test_ner"
else
    sets="train dev test test_far"
fi
for dset in ${sets}; do
    # ids are <voice>-<session>-<NNNN>: the LibriSpeech order (session, then NNNN)
    python3 -m espnet_gcft.bin.make_utt2prev --data_dir "data/${dset}" --order librispeech
done
# The stand-in for a pretrained SSL model: a tiny wav2vec2 built from a config
# (the configs' frontend path_or_url points here).
python3 -m espnet_gcft.bin.make_tiny_ssl --config conf/tiny_wav2vec2.json --out_dir exp/ssl/tiny_wav2vec2
