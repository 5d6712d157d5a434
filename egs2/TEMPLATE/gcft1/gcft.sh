#!/usr/bin/env bash
# Generative context-aware fine-tuning (GCFT) recipe stages.
#
#   ./gcft.sh --train_set train --valid_set dev --test_sets "test" [options]
#   ./gcft.sh --help
#
# Stages (--stage A --stop_stage B runs A..B):
#   1  local/data.sh: Kaldi data dirs + utt2prev                      -> data/<set>
#   2  format audio, build the token list                             -> dump/raw/<set>, data/token_list
#   3  context texts: prev_gt, LLM generation per prompt (resumable)  -> dump/context/<set>/<source>/text
#   4  context embeddings of every source, context report             -> dump/context/<set>/<source>/emb_<pooling>.scp, report.md
#      (prev_audio for audio_inject/audio_gcaf here, or in stage 6 from the pretrained checkpoint)
#   5  ESPnet collect-stats                                           -> exp/stats
#   6  shared pretraining (--pretrain_config), training of every variant -> exp/pretrain, exp/<variant>[_<tag>]
#      (or every variant from another run's model: --init_model)
#   7  inference + scoring, decode-time conditions                    -> exp/<variant>/decode_<set>[_<condition>]/score.json
#   8  RESULTS.md/.json/.png, packed models                           -> RESULTS.md, RESULTS.json, RESULTS.png
# A test set without data/<set>/text (a blind test set) is decoded, not scored,
# and only by the variants that need no previous text at inference.
# Every step skips, with a log line, when its outputs are newer than its inputs
# and were made with the same options (a stamp next to each output records
# them), so a changed option redoes exactly the steps it feeds; a step that
# failed half-way is rerun (generation, embedding and training resume where
# they stopped).
# The machinery (stamps, job pool, locks, failure lines) and the context and
# training steps live in scripts/lib/; the variants and the dir layout come
# from the variant registry (python -m espnet_gcft.bin.variants).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

# <options>
# == General ==
stage=1                  # [int 1-8] first stage to run
stop_stage=8             # [int 1-8] last stage to run
nj=4                     # [int >= 1] parallel jobs for data formatting and embedding
ngpu=0                   # [int >= 0] GPUs for training and decoding (0: CPU)
python=python3           # [command] python interpreter (path.sh puts the venv first)
dumpdir=dump             # [path] where formatted data and contexts go
expdir=""                # [path or empty] where experiments go (default: exp, or exp/<ssl> with --ssl)
full_disk_kb=1024        # [int >= 0] a failed stage whose output filesystem has less free space (KiB) is reported as a full disk
lock_grace=60            # [int >= 0] seconds to wait for a killed run's last processes to let go of an output
# == Data ==
task=asr                 # [asr|ner|sentiment] what the target text holds
local_data_opts=""       # [options of local/data.sh] options passed to local/data.sh
train_set=""             # [name] training set name (required)
valid_set=""             # [name] validation set name (required)
test_sets=""             # [names] sets to decode and score (required)
fs=16000                 # [int >= 1] sampling rate of the formatted audio
token_type=char          # [char|bpe] target tokens: characters or sentencepiece pieces
nbpe=100                 # [int >= 1] sentencepiece vocabulary size (bpe)
ssl_init_config=""       # [file or empty, stage 2] wav2vec2 JSON config: stage 2 builds a randomly initialised model in exp/ssl/<name> (smoke tests)
results_extra=""         # [names or empty] more exp dir names (e.g. sweep points: inject_gt_rows_n3) whose decodes stage 8 adds to RESULTS
results_records=""       # [files or empty, stage 8] RESULTS.json files of other runs (e.g. the NER run) whose records stage 8 adds
results=""               # [md path or empty] stage 8 table of --expdir (default: RESULTS.md, or RESULTS_<ssl>.md with --ssl; RESULTS.json and RESULTS.png go next to it)
headline=""              # [file or empty, stage 8] YAML list of the tests stated before the run (variant, set, condition, metric, target): RESULTS.md shows them first, as one Holm family
ssl=""                   # [name or empty] S3PRL upstream to fine-tune (wav2vec2, hubert, wavlm_base_plus, ...): sets frontend_conf.upstream of every config (empty: as the configs say)
# == Context ==
prompt_file=""           # [file or empty] YAML file with more prompts
prompts="next_sentence title"  # [prompts or empty] LLM prompts, one source gen_<prompt> each
context_prompt=""        # [prompt or empty] prompt whose generations gen_inject and gcaf use (default: first of prompts)
num_prev=1               # [int >= 1] previous utterances in the context (joined into one text, or one row each: --prev_mode)
prev_mode=join           # [join|rows] join: the N previous texts joined into one LLM/encoder input | rows: each previous utterance's context is its own row (L = N)
context_tag=""           # [name or empty] names the generated sources gen_<prompt>[_n<N>]_<context_tag> (e.g. a sweep over --llm keeps each LLM's outputs apart)
llm_gguf_file=""         # [name or empty] GGUF file inside --llm
llm=smollm2-135m-instruct  # [model, stages 3 and 7] causal LM: embedded name, local dir or hub name
llm_backend=transformers # [transformers|vllm] generation backend
llm_device=cpu           # [device] device of the LLM
gen_batch_size=16        # [int >= 1] prompts per LLM call
gen_max_new_tokens=32    # [int >= 1] longest generated context in tokens
gen_nj=1                 # [int >= 1] generation shards (parallel jobs, e.g. Slurm array tasks)
gen_args=""              # [options of generate_context] more generate_context options, e.g. sampling: "--do_sample --temperature 0.7 --seed 1"
text_encoder=all-minilm-l6-v2  # [model, stages 4 and 7] text encoder: embedded name, local dir or hub name
pooling=mean             # [cls|mean|sequence] how a text becomes an embedding (a gcaf student with one query distils the sequence's mean)
embed_device=cpu         # [device] device of the text encoder
context_report=true      # [true|false] stage 4 also writes dump/context/<set>/report.{json,md} (how much each source tells)
# == Training and decoding ==
variants="baseline inject_gt gen_inject gcaf"  # [variants] variants to train and compare (also audio_inject audio_gcaf: the previous utterance's audio as context)
tag=""                   # [name or empty] a sweep point: variants train into <expdir>/<variant>_<tag> (stats, pretraining and the hyp condition's baseline stay shared)
train_config_dir=conf    # [dir, stages 5-6] holds train_<variant>.yaml for every variant
model_args=""            # [options of gcft_train, stages 5-6] gcft_train options that shape the model, used by collect-stats and training (e.g. the SSL upstream)
train_args=""            # [options of gcft_train, stages 5-6] extra options for gcft_train, training only (the shared pretraining and every variant)
variant_train_args=""    # [options of gcft_train, stages 5-6] extra options for the variants' training only, not the shared pretraining (a sweep point's, e.g. --model_conf distill_weight=0.1)
train_jobs=1             # [int >= 1] variants trained at the same time (CPU threads are shared out)
train_procs=1            # [int >= 1] DDP ranks per training (ESPnet's DDP; gloo on CPUs with --ngpu 0, one GPU per rank otherwise)
dist_launcher=torchrun   # [torchrun|slurm] how the ranks start: torchrun (one machine, inside one job) | slurm (one Slurm job of train_procs tasks, srun starts them: scripts/srun_ranks.sh; needs cmd_backend=slurm)
train_nodes=1            # [int >= 1] nodes of a --dist_launcher slurm training (train_procs ranks spread over them)
pretrain_config=""       # [file or empty, stages 5-6] context-free config trained once into <expdir>/pretrain; every variant starts from it (ESPnet --init_param)
init_model=""            # [file or empty, stages 4-6] instead of --pretrain_config: every variant starts from this checkpoint (e.g. the asr run's exp/pretrain/valid.loss.ave.pth for --task ner); with another token list its layers indexed by token keep their random init
seed=0                   # [int >= 0] training seed (ESPnet --seed) of the pretraining and every variant
inference_config=conf/decode.yaml  # [file, stage 7] gcft_inference options (YAML)
inference_nj=1           # [int >= 1] decoding jobs per test set
decode_jobs=1            # [int >= 1] decodes (variants x conditions) run at the same time (CPU threads are shared out)
inference_model=valid.loss.ave.pth  # [name] checkpoint used for decoding (and as --init_param)
conditions="shuffled opposite hyp self"  # [conditions or empty] decode-time context conditions of the variants that read context at inference, besides gt: shuffled opposite hyp self replaced<p> dropped<p> (self: each session decoded in order, every context made from the model's own earlier hypotheses, as a deployment runs it; degraded: a fraction p of the contexts replaced by another session's or dropped)
self_batch_sessions=8    # [int >= 1] sessions decoded side by side in the self condition (transcribe --batch_sessions: their contexts generated and embedded as one batch)
train_degrade=""         # [degradation or empty] replaced<p> | dropped<p>: degrade the training and validation contexts the same way
hyp_variant=baseline     # [variant] whose test hypotheses are the previous text of the hyp condition
# </options>

help_message="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<sets>\" [options]"
command_line="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh  # checks every value against its [spec] (exit 2 before any work)
if [ $# -ne 0 ]; then
    __gcft_help "$0" >&2
    echo "${help_message}" >&2
    exit 2
fi
for lib in steps jobs locks failure context train; do
    # shellcheck source=/dev/null
    . "scripts/lib/${lib}.sh"
done
trap_interrupts
trap 'on_exit $? "${dumpdir}" "${expdir}" data "$(dirname "${results}")"' EXIT
# pool_wait: every job of the pool, or the run stops naming those that failed
pool_wait() { pool_drain || { log "Error: failed: ${pool_failed[*]}"; exit 1; }; }
in_stages() { [ "${stage}" -le "$2" ] && [ "${stop_stage}" -ge "$1" ]; }
# stage 1's own options, checked by local/data.sh's declarations before anything is written
if in_stages 1 1; then
    # shellcheck disable=SC2086
    GCFT_CHECK_ONLY=1 local/data.sh --task "${task}" ${local_data_opts} || exit 2
fi
# One experiment dir and one RESULTS per upstream, so that runs of several
# upstreams sit side by side; the upstream goes first in the model options so
# that the user's --model_args can still override anything.
if [ -n "${ssl}" ]; then
    expdir=${expdir:-exp/${ssl}}
    results=${results:-RESULTS_${ssl}.md}
    model_args="--frontend_conf frontend_conf.upstream=${ssl}${model_args:+ ${model_args}}"
fi
expdir=${expdir:-exp}
results=${results:-RESULTS.md}
context_prompt=${context_prompt:-${prompts%% *}}
# the variants (variant_context, variant_mode, variant_config) and where the options put
# their models, contexts and decodes (variant_dir, variant_source, decode_dir, ...)
layout=$(${python} -m espnet_gcft.bin.variants --shell --variants "${variants}" --expdir "${expdir}" \
    --tag "${tag}" --num_prev "${num_prev}" --prev_mode "${prev_mode}" --prompts "${prompts}" \
    --context_prompt "${context_prompt}" --context_tag "${context_tag}" --test_sets "${test_sets}" \
    --conditions "gt ${conditions} ${train_degrade}") || exit 2
eval "${layout}"
needs_context_at_inference() { [ "${variant_mode[$1]}" = inject ]; }
# needs_text_at_inference <variant>: reads the previous utterance's text (a blind set has none)
needs_text_at_inference() { needs_context_at_inference "$1" && [ "${variant_context[$1]}" != prev_audio ]; }
uses_audio_context() { [ "${variant_context[$1]}" = prev_audio ]; }
has_student() { [ "${variant_mode[$1]}" = distill ]; }
# the checkpoint every variant starts from (ESPnet --init_param), if any
init_param=${init_model}
[ -n "${pretrain_config}" ] && init_param=${expdir}/pretrain/${inference_model}
# with --init_model: the layers the run's token list leaves out (set in stage 6)
init_excludes=""
all_sets=$(echo "${train_set} ${valid_set} ${test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
# an ner or sentiment run's targets hold tags or labels: its own token list, so that
# it does not replace the asr run's in the same recipe dir
token_dir=data/token_list/${token_type}$([ "${token_type}" = bpe ] && echo "${nbpe}" || true)$([ "${task}" = asr ] || echo "_${task}")
token_list=${token_dir}/tokens.txt
stats_dir=${expdir}/stats_${token_type}
bpe_opt=$([ "${token_type}" = bpe ] && echo "--bpemodel ${token_dir}/bpe.model" || true)
# A job on a GPU device asks its runner (Slurm) for one GPU.
gen_gpu=$([ "${llm_device}" = cpu ] && echo 0 || echo 1)
embed_gpu=$([ "${embed_device}" = cpu ] && echo 0 || echo 1)
prompt_file_opt=()
[ -n "${prompt_file}" ] && prompt_file_opt=(--prompt_file "${prompt_file}")
# has_references <data dir>: the set has a text (a blind test set has none).
has_references() { [ -e "$1/text" ]; }

# What this run writes it claims; what its stages only read it shares (scripts/lib/locks.sh).
for dset in ${all_sets}; do
    if in_stages 1 1; then claim "data/${dset}"; elif in_stages 2 2; then share "data/${dset}"; fi
    if in_stages 2 2; then claim "${dumpdir}/raw/${dset}"; elif in_stages 3 7; then share "${dumpdir}/raw/${dset}"; fi
done
if in_stages 2 2; then claim "${token_dir}"; elif in_stages 5 7; then share "${token_dir}"; fi
if in_stages 6 8; then
    for variant in ${variants}; do claim "${variant_dir[${variant}]}"; done
fi
if in_stages 8 8; then claim "${results}"; fi

if in_stages 1 1; then
    current_stage=1
    log "Stage 1: local/data.sh ${local_data_opts}: corpus -> data/{${all_sets% }}"
    # shellcheck disable=SC2086
    local/data.sh --task "${task}" ${local_data_opts}
    for dset in ${all_sets}; do
        required="wav.scp utt2spk utt2prev text transcript"
        if ! has_references "data/${dset}" && [[ " ${test_sets} " == *" ${dset} "* ]] \
                && [ "${dset}" != "${train_set}" ] && [ "${dset}" != "${valid_set}" ]; then
            log "  data/${dset} has no text: a blind test set, decoded and not scored"
            required="wav.scp utt2spk utt2prev"
        fi
        for f in ${required}; do
            [ -s "data/${dset}/${f}" ] || { log "Error: data/${dset}/${f} is missing"; exit 1; }
        done
    done
fi

if in_stages 2 2; then
    current_stage=2
    log "Stage 2: format audio and build the ${token_type} token list: data -> ${dumpdir}/raw, ${token_dir}"
    format_set() {
        ${python} -m espnet_gcft.bin.format_data --data_dir "data/$1" --out_dir "${dumpdir}/raw/$1" \
            --fs "${fs}" --nj "${nj}"
        touch "${dumpdir}/raw/$1/.done"
    }
    for dset in ${all_sets}; do
        # the dir too: its time stamp changes when stage 1 adds or removes a file
        run_step "${dumpdir}/raw/${dset}/.done" "$(step_key "fs=${fs}")" "data/${dset}" data/"${dset}"/* -- \
            format_set "${dset}"
    done
    make_token_list() {
        local bpe_opts=()
        mkdir -p "${token_dir}"
        cut -d' ' -f2- "${dumpdir}/raw/${train_set}/text" > "${token_dir}/train_text"
        if [ "${token_type}" = bpe ]; then
            ${python} -m espnet_gcft.bin.spm_train --input="${token_dir}/train_text" \
                --vocab_size="${nbpe}" --model_type=unigram --model_prefix="${token_dir}/bpe" \
                --character_coverage=1.0 --input_sentence_size=100000000 \
                --user_defined_symbols="$(${python} -m espnet_gcft.bin.recipe_info ner_symbols)"
            bpe_opts=(--bpemodel "${token_dir}/bpe.model")
        fi
        ${python} -m espnet_gcft.bin.espnet_cli espnet2.bin.tokenize_text --token_type "${token_type}" "${bpe_opts[@]}" \
            --input "${token_dir}/train_text" --output "${token_list}.tmp" --field 1- \
            --write_vocabulary true --add_symbol '<blank>:0' --add_symbol '<unk>:1' \
            --add_symbol '<sos/eos>:-1'
        mv "${token_list}.tmp" "${token_list}"
    }
    run_step "${token_list}" "$(step_key "token_type=${token_type}" "nbpe=${nbpe}")" \
        "${dumpdir}/raw/${train_set}/text" -- make_token_list
    if [ -n "${ssl_init_config}" ]; then
        ssl_dir=exp/ssl/$(basename "${ssl_init_config}" .json)
        if up_to_date "${ssl_dir}/config.json" "${ssl_init_config}"; then
            log "  ${ssl_dir} is up to date"
        else
            log "  building a randomly initialised SSL model from ${ssl_init_config} -> ${ssl_dir}"
            ${python} -m espnet_gcft.bin.make_tiny_ssl --config "${ssl_init_config}" --out_dir "${ssl_dir}"
        fi
    fi
fi

if in_stages 3 3; then
    current_stage=3
    log "Stage 3: context texts (prev_gt, ${prompts} with ${llm}): ${dumpdir}/raw -> ${dumpdir}/context"
    take_turn "${dumpdir}/context"
    gen_jobs=()
    for dset in ${all_sets}; do
        data=${dumpdir}/raw/${dset}
        if ! has_references "${data}"; then
            log "  ${dset}: no transcript, so no previous text to build contexts from"
            continue
        fi
        out=${dumpdir}/context/${dset}/${prev_source}
        run_step "${out}/text" "$(step_key "num_prev=${text_num_prev}")" "${data}/transcript" "${data}/utt2prev" -- \
            ${python} -m espnet_gcft.bin.make_prev_text --data_dir "${data}" --text transcript \
            --num_prev "${text_num_prev}" --out_dir "${out}"
        for prompt in ${prompts}; do
            gen_jobs+=("${data}" "${data}/transcript" "${dumpdir}/context/${dset}/${gen_source[${prompt}]}" "${prompt}")
        done
    done
    # every set and prompt that is not up to date in one run: the LLM is loaded once
    generate "${dumpdir}/context/log" "${gen_jobs[@]}"
    end_turn "${dumpdir}/context"
fi

if in_stages 4 4; then
    current_stage=4
    log "Stage 4: embed every context source with ${text_encoder} (${pooling}) and report on it: text -> emb_${pooling}.scp, report.md"
    take_turn "${dumpdir}/context"
    text_sources="${prev_source} $(for p in ${prompts}; do echo "${gen_source[${p}]}"; done | tr '\n' ' ')"
    for dset in ${all_sets}; do
        has_references "${dumpdir}/raw/${dset}" || continue
        report_dir=${dumpdir}/context/${dset}
        # shellcheck disable=SC2046
        embed "${dumpdir}/raw/${dset}" $(for src in ${text_sources}; do echo "${report_dir}/${src}"; done)
        [ "${context_report}" = true ] || continue
        # shellcheck disable=SC2046,SC2086
        run_step "${report_dir}/report.json" \
            "$(step_key "encoder=${text_encoder}" "pooling=${pooling}" "sources=${text_sources}")" \
            $(for src in ${text_sources}; do echo "${report_dir}/${src}/text"; done) -- \
            ${python} -m espnet_gcft.bin.context_report --data_dir "${dumpdir}/raw/${dset}" \
            --text transcript --context_dir "${report_dir}" --encoder "${text_encoder}" \
            --pooling "${pooling}" --device "${embed_device}" --out "${report_dir}" \
            --sources ${text_sources}
    done
    # without a shared pretrained model the audio context comes from the configs' upstream now
    [ -n "${pretrain_config}" ] || audio_contexts
    stack_rows
    end_turn "${dumpdir}/context"
fi

if in_stages 5 5; then
    current_stage=5
    log "Stage 5: ESPnet collect-stats: ${dumpdir}/raw -> ${stats_dir}"
    take_turn "${stats_dir}"
    stats_config=${pretrain_config:-${train_config_dir}/${variant_config[${variants%% *}]}}
    collect_stats() {
        # shellcheck disable=SC2046,SC2086
        ${train_cmd} "${stats_dir}/stats.log" \
            ${python} -m espnet_gcft.bin.gcft_train --collect_stats true --use_preprocessor true \
            --config "${stats_config}" \
            --token_type "${token_type}" --token_list "${token_list}" ${bpe_opt} \
            $(data_args train "${train_set}") $(data_args valid "${valid_set}") \
            --train_shape_file "${dumpdir}/raw/${train_set}/wav.scp" \
            --valid_shape_file "${dumpdir}/raw/${valid_set}/wav.scp" \
            --batch_type unsorted --batch_size 8 --output_dir "${stats_dir}" ${model_args}
        touch "${stats_dir}/.done"
    }
    run_step "${stats_dir}/.done" "$(step_key "file:${stats_config}" "model_args=${model_args}" "file:${token_list}")" \
        "${dumpdir}/raw/${train_set}/.done" "${dumpdir}/raw/${valid_set}/.done" "${token_list}" -- collect_stats
    end_turn "${stats_dir}"
fi

if in_stages 6 6; then
    current_stage=6
    if [ -n "${pretrain_config}" ]; then
        dir=${expdir}/pretrain
        log "Stage 6: shared pretraining (${pretrain_config}, no context) -> ${dir}"
        take_turn "${dir}"
        run_step "${dir}/.done" "$(train_key "${pretrain_config}" "" "" "")" "${pretrain_config}" "${stats_dir}/.done" -- \
            train_model "${dir}" "${pretrain_config}" "$(nproc)" "" "" ""
        end_turn "${dir}"
        # the audio variants' context: the pretrained model's upstream, frozen
        take_turn "${dumpdir}/context"
        audio_contexts
        stack_rows
        end_turn "${dumpdir}/context"
    elif [ -n "${init_model}" ]; then
        # another run's model: what of it a token list of its own cannot take over
        init_excludes=$(${python} -m espnet_gcft.bin.init_param --checkpoint "${init_model}" \
            --token_list "${token_list}")
        init_excludes=$([[ "${init_excludes}" == *:::* ]] && echo "${init_excludes##*:::}" || true)
        log "Stage 6: every variant starts from ${init_model} (--init_model, no shared pretraining)${init_excludes:+; another token list: ${init_excludes} keep their random init}"
    fi
    # Variants train one after another, or --train_jobs at a time; on a CPU the
    # cores are shared out (small models use one core better than two).
    threads=$(( $(nproc) / train_jobs )); [ "${threads}" -ge 1 ] || threads=1
    for variant in ${variants}; do
        source=${variant_source[${variant}]}
        config=${train_config_dir}/${variant_config[${variant}]}
        dir=${variant_dir[${variant}]}
        train_context=""
        valid_context=""
        variant_args=${variant_train_args}
        if [ -n "${source}" ]; then
            if [ -n "${train_degrade}" ]; then
                take_turn "${dumpdir}/context"
                for dset in "${train_set}" "${valid_set}"; do
                    condition_context "${dset}" "${source}" "${train_degrade}"
                done
                end_turn "${dumpdir}/context"
                source=${condition_source["${source} ${train_degrade}"]}
            fi
            train_context=${dumpdir}/context/${train_set}/${source}/emb_${pooling}.scp
            valid_context=${dumpdir}/context/${valid_set}/${source}/emb_${pooling}.scp
        fi
        if uses_audio_context "${variant}"; then
            # the fusion's context_dim is the upstream's hidden size, whatever --ssl is
            variant_args+="${variant_args:+ }--model_conf context_dim=$(${python} -m espnet_gcft.bin.recipe_info \
                context_dim "${dumpdir}/context/${train_set}/prev_audio/meta.json" "emb_${pooling}")"
        fi
        log "Stage 6: train ${variant} (${config}, context: ${source:-none}${init_param:+, from ${init_param}}) -> ${dir}"
        key=$(train_key "${config}" "${train_context}" "${valid_context}" "${init_param}" "${variant_args}")
        # shellcheck disable=SC2086
        if fresh "${dir}/.done" "${key}" "${config}" "${stats_dir}/.done" ${train_context} \
                ${valid_context} ${init_param}; then
            log "  ${dir} is up to date"
            continue
        fi
        pool_run "${train_jobs}" "${dir}/train.log" train_model "${dir}" "${config}" "${threads}" \
            "${train_context}" "${valid_context}" "${init_param}" "${variant_args}"
    done
    pool_wait
    # context.yaml: how each model's context was made (stage 8 packs it with the model)
    for variant in ${variants}; do
        base=${variant_base_source[${variant}]}
        opts=(--variant "${variant}" --source "${variant_source[${variant}]}" --pooling "${pooling}"
              --num_prev "${num_prev}" --prev_mode "${prev_mode}" --text_encoder "${text_encoder}"
              --llm "${llm}" --llm_gguf_file "${llm_gguf_file}" --llm_backend "${llm_backend}"
              --prompt "${context_prompt}" --max_new_tokens "${gen_max_new_tokens}" --gen_args="${gen_args}"
              --train_degrade="${train_degrade}" ${prompt_file:+--prompt_file "${prompt_file}"}
              ${base:+--meta "${dumpdir}/context/${train_set}/${base}/meta.json"})
        run_step "${variant_dir[${variant}]}/context.yaml" "$(step_key "${opts[@]}")" \
            "${variant_dir[${variant}]}/.done" ${base:+"${dumpdir}/context/${train_set}/${base}/meta.json"} -- \
            ${python} -m espnet_gcft.bin.context_spec "${opts[@]}" --out "${variant_dir[${variant}]}/context.yaml"
    done
fi

# condition_applies <variant> <condition> <set>: the variant is decoded in that condition.
# hyp replaces a previous *text* by an ASR hypothesis: not for the audio context,
# and not built for row-stacked contexts; self makes the contexts from the model's own
# hypotheses (text contexts only); opposite needs the set's homophone items.
condition_applies() {
    needs_context_at_inference "$1" || return 1
    case "$2" in
        hyp) ! uses_audio_context "$1" && [ -z "${rows_suffix}" ] ;;
        self) ! uses_audio_context "$1" ;;
        opposite) [ -s "${dumpdir}/raw/$3/homophones" ] ;;
        *) return 0 ;;
    esac
}

# decode_and_score <variant> <set> <condition>
decode_and_score() {
    local variant=$1 dset=$2 condition=$3 out data context_scp="" scored=true
    local context_opt=() homophones_opt=() hyp_dirs=() result key model i self_text=""
    out=${decode_dir["${variant} ${dset} ${condition}"]}
    data=${dumpdir}/raw/${dset}
    model=${variant_dir[${variant}]}/${inference_model}
    log "Stage 7: decode and score ${variant} on ${dset} (context: ${condition}) -> ${out}"
    has_references "${data}" || scored=false
    if [ "${condition}" = self ]; then
        # the sessions in order through transcribe_session(context="self") (bin/transcribe),
        # which keeps each utterance's context; the decode below scores those contexts
        self_decode "${variant}" "${dset}" "${out}/self" || return 1
        context_scp=${out}/self/context.scp
        self_text=${out}/self/text
        context_opt=(--data_path_and_name_and_type "${context_scp},context,kaldi_ark")
    elif needs_context_at_inference "${variant}"; then
        context_scp=${dumpdir}/context/${dset}/${condition_source["${variant_source[${variant}]} ${condition}"]}/emb_${pooling}.scp
        context_opt=(--data_path_and_name_and_type "${context_scp},context,kaldi_ark")
    fi
    if [ -s "${data}/homophones" ] && "${scored}"; then
        homophones_opt=(--homophones "${data}/homophones" --reference "${data}/text")
    fi
    result=${out}/score.json
    "${scored}" || result=${out}/hyp.trn
    key=$(step_key "file:${inference_config}" "model=${model}" "file:${model}" \
        "context=${context_scp}" "file:${context_scp}" ${self_text:+"file:${self_text}"} "task=${task}")
    # shellcheck disable=SC2086
    if fresh "${result}" "${key}" "${model}" "${data}/wav.scp" ${context_scp} "${inference_config}"; then
        log "  ${result} is up to date"
        return 0
    fi
    mkdir -p "${out}/log"
    local split_dir=${out}/split${inference_nj}
    mkdir -p "${split_dir}"
    awk -v n="${inference_nj}" -v dir="${split_dir}" \
        '{ print > (dir "/wav." ((NR - 1) % n + 1) ".scp") }' "${data}/wav.scp"
    ${decode_cmd} --gpu "${ngpu}" JOB=1:"${inference_nj}" "${out}/log/decode.JOB.log" \
        ${python} -m espnet_gcft.bin.gcft_inference --model "${variant_dir[${variant}]}" \
        --model_file "${inference_model}" --config "${inference_config}" \
        --data_path_and_name_and_type "${split_dir}/wav.JOB.scp,speech,sound" \
        "${context_opt[@]}" "${homophones_opt[@]}" \
        --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" \
        --output_dir "${split_dir}/JOB"
    # the hypotheses: the split decodes', or the self decode's own (the split decodes of the
    # self condition only score the forced choice under the contexts it made)
    for ((i = 1; i <= inference_nj; i++)); do hyp_dirs+=("${split_dir}/${i}"); done
    [ "${condition}" != self ] || hyp_dirs=("${out}/self")
    ${python} -m espnet_gcft.bin.make_trn --data_dir "${data}" --out_dir "${out}" \
        "${hyp_dirs[@]}"
    if [ -e "${split_dir}/1/student.scp" ]; then
        # a gcaf model's context predictions (the scp lines point into the split arks)
        for ((i = 1; i <= inference_nj; i++)); do cat "${split_dir}/${i}/student.scp"; done \
            > "${out}/student.scp"
    fi
    if ! "${scored}"; then
        log "  ${dset} has no references: hypotheses in ${out}/hyp.trn, not scored"
        write_stamp "${result}" "${key}"
        return 0
    fi
    local extra=()
    if [ "${#homophones_opt[@]}" -gt 0 ]; then
        for ((i = 1; i <= inference_nj; i++)); do cat "${split_dir}/${i}/forced_choice"; done \
            > "${out}/forced_choice"
        extra=(--homophones "${data}/homophones" --forced_choice "${out}/forced_choice")
    fi
    ${python} -m espnet_gcft.bin.score --task "${task}" --ref "${out}/ref.trn" \
        --hyp "${out}/hyp.trn" --result_txt "${out}/result.txt" "${extra[@]}" \
        > "${out}/score.json.tmp"
    mv "${out}/score.json.tmp" "${out}/score.json"
    if [ -s "${data}/homophones" ]; then
        diagnostics "${variant}" "${dset}" "${condition}" "${out}"
    fi
    write_stamp "${result}" "${key}"
    log "  $(${python} -m espnet_gcft.bin.recipe_info score_summary "${out}/score.json")"
}

# self_decode <variant> <set> <out dir>: the set's sessions decoded in order, each utterance's
# context made from the model's own earlier hypotheses; <out dir>/{text,context.scp}
self_decode() {
    local variant=$1 dset=$2 out=$3 model=${variant_dir[$1]}/${inference_model}
    run_step "${out}/context.scp" "$(step_key "file:${model}" "file:${variant_dir[${variant}]}/context.yaml" \
        "file:${inference_config}" "batch=${self_batch_sessions}")" "${model}" "${inference_config}" \
        "${variant_dir[${variant}]}/context.yaml" "${dumpdir}/raw/${dset}/wav.scp" \
        "${dumpdir}/raw/${dset}/utt2prev" -- \
        ${decode_cmd} --gpu "${ngpu}" "${out}/log/transcribe.log" ${python} -m espnet_gcft.bin.transcribe \
        --model "${variant_dir[${variant}]}" --model_file "${inference_model}" \
        --config "${inference_config}" --data_dir "${dumpdir}/raw/${dset}" --context self \
        --batch_sessions "${self_batch_sessions}" --write_context --output_dir "${out}" \
        --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)"
}

# diagnostics <variant> <set> <condition> <decode dir>: what the context knew (decode_diagnostics).
diagnostics() {
    local variant=$1 dset=$2 condition=$3 out=$4 opts=() source=${variant_source[$1]} generated=""
    [ -z "${source}" ] || generated=${dumpdir}/context/${dset}/${condition_source["${source} ${condition}"]}/text
    if has_student "${variant}"; then
        # student_gain: against the training teachers' mean; per row type with utt2type
        opts=(--student "${out}/student.scp"
              --teacher "${dumpdir}/context/${dset}/${source}/emb_${pooling}.scp"
              --train_teacher "${dumpdir}/context/${train_set}/${source}/emb_${pooling}.scp")
        [ ! -s "${dumpdir}/raw/${dset}/utt2type" ] || opts+=(--utt2type "${dumpdir}/raw/${dset}/utt2type")
    elif [ "${variant_context[${variant}]}" = generated ] && [ "${condition}" != shuffled ] && [ -s "${generated}" ]; then
        # (a row-stacked source has no one text per utterance)
        opts=(--generated "${generated}")
    fi
    [ "${#opts[@]}" -gt 0 ] || return 0
    ${python} -m espnet_gcft.bin.decode_diagnostics --homophones "${dumpdir}/raw/${dset}/homophones" \
        "${opts[@]}" --out "${out}/diagnostics.json"
}

# condition_contexts <set>: the contexts of every condition of the context variants' sources.
condition_contexts() {
    local dset=$1 data=${dumpdir}/raw/$1 condition variant source dir hyp_text
    local sources=() hyp_sources=()
    for variant in ${variants}; do
        needs_context_at_inference "${variant}" && sources+=("${variant_source[${variant}]}")
        condition_applies "${variant}" hyp "${dset}" && hyp_sources+=("${variant_source[${variant}]}")
    done
    [ "${#sources[@]}" -gt 0 ] || return 0
    for condition in ${conditions}; do
        # self: each decode makes its own contexts (self_decode)
        [ "${condition}" != self ] || continue
        if [ "${condition}" = hyp ]; then
            [ "${#hyp_sources[@]}" -gt 0 ] || continue
            # the untagged hyp variant: a sweep point's hyp condition reads the shared baseline
            hyp_text=${expdir}/${hyp_variant}/decode_${dset}/text
            if [ ! -s "${hyp_text}" ]; then
                log "Error: no ${hyp_text}: the hyp condition reads the hypotheses of" \
                    "--hyp_variant ${hyp_variant}; add it to --variants or drop hyp from --conditions"
                return 1
            fi
            for source in $(printf '%s\n' "${hyp_sources[@]}" | sort -u); do
                dir=${dumpdir}/context/${dset}/${condition_source["${source} hyp"]}
                if [ "${source}" = "${prev_source}" ]; then
                    run_step "${dir}/text" "$(step_key "num_prev=${text_num_prev}" "hyp=${hyp_text}")" \
                        "${hyp_text}" "${data}/utt2prev" -- \
                        ${python} -m espnet_gcft.bin.make_prev_text --data_dir "${data}" \
                        --text "$(realpath --relative-to="${data}" "${hyp_text}")" \
                        --num_prev "${text_num_prev}" --out_dir "${dir}"
                else
                    generate "${dir}/log" "${data}" "${hyp_text}" "${dir}" "${context_prompt}"
                fi
                embed "${data}" "${dir}"
            done
            continue
        fi
        for source in $(printf '%s\n' "${sources[@]}" | sort -u); do
            condition_context "${dset}" "${source}" "${condition}" "${data}/homophones"
        done
    done
}

if in_stages 7 7; then
    current_stage=7
    # --decode_jobs decodes at a time, the cores shared out among them
    decode_threads=$(( $(nproc) / decode_jobs )); [ "${decode_threads}" -ge 1 ] || decode_threads=1
    for dset in ${test_sets}; do
        data=${dumpdir}/raw/${dset}
        # The self condition's session decodes take longest (gen_inject's generates a title
        # per utterance) and need nothing but the trained models: they are queued first and
        # run beside the gt decodes and the condition contexts, not after them alone.
        context_threads=$(nproc)
        if has_references "${data}" && [[ " ${conditions} " == *" self "* ]]; then
            for variant in ${variants}; do
                condition_applies "${variant}" self "${dset}" || continue
                OMP_NUM_THREADS=${decode_threads} pool_run "${decode_jobs}" \
                    "${variant} on ${dset} (self)" decode_and_score "${variant}" "${dset}" self
                # beside a session decode the condition contexts (the hyp titles) take one
                # decode's share of the cores: with more threads than cores they took 2.8x as long
                context_threads=${decode_threads}
            done
        fi
        gt_jobs=()
        for variant in ${variants}; do
            if needs_text_at_inference "${variant}" && ! has_references "${data}"; then
                log "Stage 7: ${variant} on ${dset} skipped: it needs the previous utterance's text, which blind ${dset} lacks"
                continue
            fi
            OMP_NUM_THREADS=${decode_threads} pool_run "${decode_jobs}" "${variant} on ${dset}" \
                decode_and_score "${variant}" "${dset}" gt
            gt_jobs+=("${variant} on ${dset}")
        done
        pool_wait_for "${gt_jobs[@]}" || { log "Error: failed: ${pool_failed[*]}"; exit 1; }
        # does the shared pretrained encoder hear the distill-only topic words? (a linear probe)
        if [ -n "${pretrain_config}" ] && [ -s "${data}/distill_topics" ] \
                && [ -s "${dumpdir}/raw/${train_set}/distill_topics" ]; then
            take_turn "${expdir}/pretrain"
            model=${expdir}/pretrain/${inference_model}
            run_step "${expdir}/pretrain/decode_${dset}/diagnostics.json" "$(step_key "file:${model}")" \
                "${model}" "${data}/distill_topics" "${dumpdir}/raw/${train_set}/distill_topics" -- \
                ${python} -m espnet_gcft.bin.probe_sense --model "${expdir}/pretrain" \
                --model_file "${inference_model}" --train_data "${dumpdir}/raw/${train_set}" \
                --test_data "${data}" --out "${expdir}/pretrain/decode_${dset}/diagnostics.json"
            end_turn "${expdir}/pretrain"
        fi
        has_references "${data}" && [ -n "${conditions}" ] || { pool_wait; continue; }
        # shuffled/opposite re-pair contexts; hyp needs a context-free model's hypotheses
        take_turn "${dumpdir}/context"
        OMP_NUM_THREADS=${context_threads} condition_contexts "${dset}"
        end_turn "${dumpdir}/context"
        for variant in ${variants}; do
            for condition in ${conditions}; do
                [ "${condition}" != self ] && condition_applies "${variant}" "${condition}" "${dset}" || continue
                OMP_NUM_THREADS=${decode_threads} pool_run "${decode_jobs}" \
                    "${variant} on ${dset} (${condition})" decode_and_score "${variant}" "${dset}" "${condition}"
            done
        done
        pool_wait
    done
fi

if in_stages 8 8; then
    current_stage=8
    log "Stage 8: ${results}, ${results%.md}.json, ${results%.md}.png and packed models: ${expdir} -> ${results}"
    scored_sets=$(for dset in ${test_sets}; do
        if has_references "${dumpdir}/raw/${dset}"; then echo "${dset}"; fi; done | tr '\n' ' ')
    if [ -n "${scored_sets// /}" ]; then
        # shellcheck disable=SC2046,SC2086
        ${python} -m espnet_gcft.bin.make_results --exp_dir "${expdir}" \
            --variants $(for variant in ${variants}; do basename "${variant_dir[${variant}]}"; done) ${results_extra} \
            $([ -z "${pretrain_config}" ] || echo pretrain) \
            --test_sets ${scored_sets} --conditions gt ${conditions} --task "${task}" \
            --context_dir "${dumpdir}/context" --context_prompt "${context_prompt}" \
            --pooling "${pooling}" --num_prev "${num_prev}" --prev_mode "${prev_mode}" --seed "${seed}" \
            --model_file "${inference_model}" --command "${command_line}" \
            ${results_records:+--extra_records ${results_records}} ${headline:+--headline "${headline}"} \
            --out "${results}" --json "${results%.md}.json" --plot "${results%.md}.png"
    else
        log "  no test set has references: no RESULTS.md"
    fi
    # a model that loads anywhere: config, checkpoint, the upstream's config files, context.yaml
    pack() { ${python} -m espnet_gcft.bin.pack_model --exp_dir "$1" --model_file "$1/${inference_model}" \
        --out "$1/packed.zip" > "$1/pack.log"; }
    for variant in ${variants}; do
        dir=${variant_dir[${variant}]}
        run_step "${dir}/packed.zip" "$(step_key pack=2 "file:${dir}/${inference_model}" "file:${dir}/config.yaml" \
            "file:${dir}/context.yaml")" "${dir}/${inference_model}" "${dir}/config.yaml" -- pack "${dir}"
    done
fi

log "Successfully finished in ${SECONDS} s"
