#!/usr/bin/env bash
# The real-run settings every corpus recipe shares, in one place: a Base-size SSL
# upstream fine-tuned on one GPU (wav2vec 2.0 unless --ssl says otherwise; each
# upstream gets exp/<ssl> and RESULTS_<ssl>.md), Qwen2.5-7B-Instruct with vLLM
# writing three contexts (next sentence, title, topic; gen_inject and gcaf use the
# next sentence), bert-base-uncased [CLS] embeddings, and the Base-SSL configs
# that each recipe's conf/ links from egs2/TEMPLATE/gcft1/conf/ssl_base.
#
#   scripts/run_ssl_base.sh <the corpus's options> [the user's options]
#
# A corpus run.sh adds only what differs (task, sets) and passes the user's
# options last, so that they win (./gcft.sh --help lists them all).
set -euo pipefail
# Real runs fetch the pretrained upstream, the LLM and the text encoder from the hub once.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}

exec ./gcft.sh \
    --ssl wav2vec2 \
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
    "$@"
