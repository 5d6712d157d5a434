#!/usr/bin/env bash
# SLUE-VoxCeleb, sentiment + ASR: the four GCFT variants (see README.md).
#   ./run.sh                               # wav2vec 2.0 Base: exp/wav2vec2, RESULTS_wav2vec2.md
#   ./run.sh --ssl hubert                  # HuBERT Base
#   ./run.sh --ssl wavlm_base_plus         # WavLM Base+
#   cmd_backend=slurm ./run.sh --gen_nj 8 --inference_nj 4
#   ./run.sh $(cat conf/tiny/args) --stop_stage 7   # CPU smoke test, tiny model
# Any gcft.sh option may follow (./gcft.sh --help).
set -euo pipefail
# Real runs fetch the pretrained upstream, the LLM and the text encoder from the hub once.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}

ssl=wav2vec2   # S3PRL upstream name; each has its own exp/<ssl> and RESULTS_<ssl>.md
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = --ssl ]; then
        [ $# -ge 2 ] || { echo "$0: --ssl needs a value" >&2; exit 2; }
        ssl=$2
        shift 2
    else
        args+=("$1")
        shift
    fi
done

./gcft.sh \
    --task sentiment \
    --train_set train \
    --valid_set devel \
    --test_sets "devel test" \
    --token_type char \
    --prompts "next_sentence title topic" \
    --context_prompt next_sentence \
    --llm Qwen/Qwen2.5-7B-Instruct \
    --llm_backend vllm \
    --llm_device cuda \
    --gen_batch_size 64 \
    --gen_max_new_tokens 48 \
    --gen_nj 4 \
    --text_encoder bert-base-uncased \
    --pooling cls \
    --embed_device cuda \
    --ngpu 1 \
    --nj 8 \
    --inference_nj 4 \
    --train_config_dir conf \
    --inference_config conf/decode.yaml \
    --expdir "exp/${ssl}" \
    --results "RESULTS_${ssl}.md" \
    --model_args "--frontend_conf frontend_conf.upstream=${ssl}" \
    "${args[@]+"${args[@]}"}"
