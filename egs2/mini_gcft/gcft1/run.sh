#!/usr/bin/env bash
# The mini GCFT recipe: the four variants on the embedded diagnostic corpus, on a CPU.
#   ./run.sh                          # stages 1-8
#   ./run.sh --stage 3 --stop_stage 7 # generation through scoring
#   ./run.sh --seed 1                 # another training seed
#   ./run.sh --task ner               # NER: the sets with the entity sessions, into exp_ner
set -euo pipefail

sets=(--train_set train --valid_set dev --test_sets "test")
start=(--pretrain_config conf/pretrain.yaml)
tokens=(--token_type char)
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [ "${args[i]}" = --task=ner ] || { [ "${args[i]}" = --task ] && [ "${args[i + 1]:-}" = ner ]; }; then
        # local/data.sh --task ner writes data/{train,dev,test}_ner: the base sets and the
        # entity sessions; its own exp dir and RESULTS (later options still override)
        sets=(--train_set train_ner --valid_set dev_ner --test_sets "test_ner" --expdir exp_ner
              --results RESULTS_ner.md)
        # The NER variants fine-tune the asr run's pretrained model (./run.sh first), as a
        # SLUE recipe fine-tunes one pretrained speech model for every task; their token
        # list is another, so its CTC output layer starts afresh. The tokens are 60
        # sentencepiece pieces, each tag one of them (gcft.sh makes the tags user-defined
        # symbols): spelled out in characters, the tags were still barely written after
        # 3 epochs (SLUE F1 under 3 for every variant). 3 epochs over the NER training
        # set (1952 utterances) are about as many updates as the asr variants' 4 over
        # train (1184).
        start=(--init_model exp/pretrain/valid.loss.ave.pth --train_args "--max_epoch 3")
        tokens=(--token_type bpe --nbpe 60)
    fi
done

./gcft.sh \
    "${sets[@]}" \
    "${tokens[@]}" \
    --prompts "title" \
    --context_prompt title \
    --gen_max_new_tokens 12 \
    "${start[@]}" \
    --train_jobs 2 \
    --pooling mean \
    --variants "baseline inject_gt gen_inject gcaf" \
    --headline conf/headline.yaml \
    --train_config_dir conf \
    --inference_config conf/decode.yaml \
    --inference_nj 1 \
    --decode_jobs 2 \
    --nj 2 \
    "$@"
