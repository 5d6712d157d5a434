#!/usr/bin/env bash
# Libri-light 10 h limited supervision, ASR (LibriSpeech dev/test): the four GCFT variants (see README.md).
#   ./run.sh                               # wav2vec 2.0 Base: exp/wav2vec2, RESULTS_wav2vec2.md
#   ./run.sh --ssl hubert                  # HuBERT Base
#   ./run.sh --ssl wavlm_base_plus         # WavLM Base+
#   cmd_backend=slurm ./run.sh --gen_nj 8 --inference_nj 4
#   ./run.sh $(cat conf/tiny/args) --stop_stage 7   # CPU smoke test, tiny model
# The settings all corpus recipes share are in scripts/run_ssl_base.sh; any
# gcft.sh option may follow (./gcft.sh --help).
set -euo pipefail

scripts/run_ssl_base.sh \
    --task asr \
    --train_set train_10h \
    --valid_set dev_clean \
    --test_sets "dev_clean dev_other test_clean test_other" \
    "$@"
