#!/usr/bin/env bash
# The mini GCFT recipe: the four variants on the embedded diagnostic corpus, on a CPU.
#   ./run.sh                          # stages 1-8
#   ./run.sh --stage 3 --stop_stage 7 # generation through scoring
#   ./run.sh --seed 1                 # another training seed
#   ./run.sh --task ner               # NER targets instead of transcripts
set -euo pipefail

./gcft.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "test" \
    --token_type char \
    --prompts "title" \
    --context_prompt title \
    --gen_max_new_tokens 12 \
    --pretrain_config conf/pretrain.yaml \
    --train_jobs 2 \
    --pooling mean \
    --variants "baseline inject_gt gen_inject gcaf" \
    --train_config_dir conf \
    --inference_config conf/decode.yaml \
    --inference_nj 1 \
    --decode_jobs 2 \
    --nj 2 \
    "$@"
