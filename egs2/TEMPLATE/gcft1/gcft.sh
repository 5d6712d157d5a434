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
#   5  ESPnet collect-stats                                           -> exp/stats
#   6  training of every variant                                      -> exp/<variant>
#   7  inference + scoring                                            -> exp/<variant>/decode_<set>/score.json
#   8  RESULTS.md, bar chart, packed models                           -> RESULTS.md, exp/results.png
# A test set without data/<set>/text (a blind test set) is decoded, not scored,
# and only by the variants that need no previous text at inference.
# Every step skips, with a log line, when its outputs are newer than its inputs;
# a step that failed half-way is rerun (generation, embedding and training
# resume where they stopped).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

# <options>
# == General ==
stage=1                  # first stage to run
stop_stage=8             # last stage to run
nj=4                     # parallel jobs for data formatting and embedding
ngpu=0                   # GPUs for training and decoding (0: CPU)
python=python3           # python interpreter (path.sh puts the venv first)
dumpdir=dump             # where formatted data and contexts go
expdir=exp               # where experiments go
# == Data ==
task=asr                 # asr | ner | sentiment: what the target text holds
local_data_opts=""       # options passed to local/data.sh
train_set=""             # training set name
valid_set=""             # validation set name
test_sets=""             # sets to decode and score
fs=16000                 # sampling rate of the formatted audio
token_type=char          # char | bpe
nbpe=100                 # sentencepiece vocabulary size (bpe)
ssl_init_config=""       # wav2vec2 JSON config: stage 2 builds a randomly initialised model in exp/ssl/<name> (smoke tests)
results=RESULTS.md       # stage 8 table of --expdir
# == Context ==
prompts="next_sentence title"  # LLM prompts, one source gen_<prompt> each
prompt_file=""           # YAML file with more prompts
context_prompt=""        # prompt whose generations gen_inject and gcaf use (default: first of prompts)
num_prev=1               # previous utterances joined into the LLM input
llm=smollm2-135m-instruct  # causal LM: embedded name, local dir or hub name
llm_gguf_file=""         # GGUF file inside --llm
llm_backend=transformers # transformers | vllm
llm_device=cpu           # device of the LLM
gen_batch_size=16        # prompts per LLM call
gen_max_new_tokens=32    # longest generated context in tokens
gen_nj=1                 # generation shards (parallel jobs, e.g. Slurm array tasks)
text_encoder=all-minilm-l6-v2  # text encoder: embedded name, local dir or hub name
pooling=mean             # cls | mean | sequence
embed_device=cpu         # device of the text encoder
# == Training and decoding ==
variants="baseline inject_gt gen_inject gcaf"  # variants to train and compare
train_config_dir=conf    # holds train_<variant>.yaml for every variant
model_args=""            # gcft_train options that shape the model, used by collect-stats and training (e.g. the SSL upstream)
train_args=""            # extra options for gcft_train, training only
train_jobs=1             # variants trained at the same time (CPU threads are shared out)
inference_config=conf/decode.yaml  # gcft_inference options (YAML)
inference_nj=1           # decoding jobs per test set
inference_model=valid.loss.ave.pth  # checkpoint used for decoding
# </options>

help_message="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<sets>\" [options]"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    __gcft_help "$0" >&2
    echo "${help_message}" >&2
    exit 2
fi
for name in train_set valid_set test_sets; do
    if [ -z "${!name}" ]; then
        echo "${help_message}" >&2
        echo "$0: --${name} is required" >&2
        exit 2
    fi
done
case "${task}" in asr|ner|sentiment) ;; *) echo "$0: --task must be asr, ner or sentiment" >&2; exit 2 ;; esac
case "${token_type}" in char|bpe) ;; *) echo "$0: --token_type must be char or bpe" >&2; exit 2 ;; esac
context_prompt=${context_prompt:-${prompts%% *}}
all_sets=$(echo "${train_set} ${valid_set} ${test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
token_dir=data/token_list/${token_type}$([ "${token_type}" = bpe ] && echo "${nbpe}" || true)
token_list=${token_dir}/tokens.txt
# A job on a GPU device asks its runner (Slurm) for one GPU.
gen_gpu=$([ "${llm_device}" = cpu ] && echo 0 || echo 1)
embed_gpu=$([ "${embed_device}" = cpu ] && echo 0 || echo 1)
prompt_file_opt=()
[ -n "${prompt_file}" ] && prompt_file_opt=(--prompt_file "${prompt_file}")

# up_to_date <output> <inputs...>: the output exists and is newer than every input.
up_to_date() {
    local output=$1 input
    shift
    [ -e "${output}" ] || return 1
    for input in "$@"; do
        [ -e "${input}" ] || continue
        [ "${input}" -nt "${output}" ] && return 1
    done
    return 0
}

# context_source <variant>: which context source a variant reads ("" for none).
context_source() {
    case "$1" in
        baseline) echo "" ;;
        inject_gt) echo "prev_gt" ;;
        gen_inject|gcaf) echo "gen_${context_prompt}" ;;
        *) echo "$0: unknown variant $1 (baseline inject_gt gen_inject gcaf)" >&2; return 2 ;;
    esac
}

# needs_context_at_inference <variant>
needs_context_at_inference() { [ "$1" = inject_gt ] || [ "$1" = gen_inject ]; }

# has_references <data dir>: the set has a text (a blind test set has none).
has_references() { [ -e "$1/text" ]; }

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
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

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: format audio and build the ${token_type} token list: data -> ${dumpdir}/raw, ${token_dir}"
    for dset in ${all_sets}; do
        out=${dumpdir}/raw/${dset}
        # the dir too: its time stamp changes when stage 1 adds or removes a file
        if up_to_date "${out}/.done" "data/${dset}" data/"${dset}"/*; then
            log "  ${out} is up to date"
            continue
        fi
        ${python} -m espnet_gcft.bin.format_data --data_dir "data/${dset}" --out_dir "${out}" \
            --fs "${fs}" --nj "${nj}"
        touch "${out}/.done"
    done
    if up_to_date "${token_list}" "${dumpdir}/raw/${train_set}/text"; then
        log "  ${token_list} is up to date"
    else
        mkdir -p "${token_dir}"
        cut -d' ' -f2- "${dumpdir}/raw/${train_set}/text" > "${token_dir}/train_text"
        if [ "${token_type}" = bpe ]; then
            ${python} -m espnet2.bin.spm_train --input="${token_dir}/train_text" \
                --vocab_size="${nbpe}" --model_type=unigram --model_prefix="${token_dir}/bpe" \
                --character_coverage=1.0 --input_sentence_size=100000000 \
                --user_defined_symbols="$(${python} -c 'from espnet_gcft.scoring.slu import NER_TYPES; print(",".join(NER_TYPES + ("FILL", "SEP")))')"
            bpe_opts=(--bpemodel "${token_dir}/bpe.model")
        else
            bpe_opts=()
        fi
        ${python} -m espnet2.bin.tokenize_text --token_type "${token_type}" "${bpe_opts[@]}" \
            --input "${token_dir}/train_text" --output "${token_list}.tmp" --field 1- \
            --write_vocabulary true --add_symbol '<blank>:0' --add_symbol '<unk>:1' \
            --add_symbol '<sos/eos>:-1'
        mv "${token_list}.tmp" "${token_list}"
    fi
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

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Stage 3: context texts (prev_gt, ${prompts} with ${llm}): ${dumpdir}/raw -> ${dumpdir}/context"
    for dset in ${all_sets}; do
        data=${dumpdir}/raw/${dset}
        if ! has_references "${data}"; then
            log "  ${dset}: no transcript, so no previous text to build contexts from"
            continue
        fi
        out=${dumpdir}/context/${dset}/prev_gt
        if up_to_date "${out}/text" "${data}/transcript" "${data}/utt2prev"; then
            log "  ${out}/text is up to date"
        else
            ${python} -m espnet_gcft.bin.make_prev_text --data_dir "${data}" --text transcript \
                --num_prev "${num_prev}" --out_dir "${out}"
        fi
        for prompt in ${prompts}; do
            out=${dumpdir}/context/${dset}/gen_${prompt}
            if up_to_date "${out}/text" "${data}/transcript" "${data}/utt2prev" ${prompt_file}; then
                log "  ${out}/text is up to date"
                continue
            fi
            log "  generating ${out} (${gen_nj} shard(s); log: ${out}/log)"
            gen_opts=(--data_dir "${data}" --text transcript --prompt "${prompt}"
                      "${prompt_file_opt[@]}" --model "${llm}" --backend "${llm_backend}"
                      --device "${llm_device}" --batch_size "${gen_batch_size}"
                      --max_new_tokens "${gen_max_new_tokens}" --num_prev "${num_prev}" --no_progress)
            [ -n "${llm_gguf_file}" ] && gen_opts+=(--gguf_file "${llm_gguf_file}")
            if [ "${gen_nj}" -le 1 ]; then
                ${gen_cmd} --gpu "${gen_gpu}" "${out}/log/generate.log" \
                    ${python} -m espnet_gcft.bin.generate_context "${gen_opts[@]}" --out_dir "${out}"
            else
                shard_jobs=$((gen_nj - 1))
                ${gen_cmd} --gpu "${gen_gpu}" JOB=0:"${shard_jobs}" "${out}/log/generate.JOB.log" \
                    ${python} -m espnet_gcft.bin.generate_context "${gen_opts[@]}" \
                    --shard "JOB/${gen_nj}" --out_dir "${out}/shard.JOB"
                ${python} -m espnet_gcft.bin.merge_context --data_dir "${data}" --out_dir "${out}" \
                    $(for ((i = 0; i < gen_nj; i++)); do echo "${out}/shard.${i}"; done)
            fi
        done
    done
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Stage 4: embed every context source with ${text_encoder} (${pooling}) and report on it: text -> emb_${pooling}.scp, report.md"
    for dset in ${all_sets}; do
        has_references "${dumpdir}/raw/${dset}" || continue
        # the sources out of date, embedded by one job (one encoder load)
        texts=()
        out_dirs=()
        for source in prev_gt $(for p in ${prompts}; do echo "gen_${p}"; done); do
            dir=${dumpdir}/context/${dset}/${source}
            if up_to_date "${dir}/emb_${pooling}.scp" "${dir}/text"; then
                log "  ${dir}/emb_${pooling}.scp is up to date"
            else
                texts+=("${dir}/text")
                out_dirs+=("${dir}")
            fi
        done
        if [ "${#texts[@]}" -gt 0 ]; then
            ${embed_cmd} --gpu "${embed_gpu}" "${dumpdir}/context/${dset}/log/embed_${pooling}.log" \
                ${python} -m espnet_gcft.bin.embed_context --text "${texts[@]}" \
                --out_dir "${out_dirs[@]}" --data_dir "${dumpdir}/raw/${dset}" \
                --encoder "${text_encoder}" --pooling "${pooling}" --device "${embed_device}" \
                --no_progress
        fi
        report_dir=${dumpdir}/context/${dset}
        if up_to_date "${report_dir}/report.json" "${report_dir}"/*/text; then
            log "  ${report_dir}/report.json is up to date"
            continue
        fi
        ${python} -m espnet_gcft.bin.context_report --data_dir "${dumpdir}/raw/${dset}" \
            --text transcript --context_dir "${report_dir}" --encoder "${text_encoder}" \
            --pooling "${pooling}" --device "${embed_device}" --out "${report_dir}"
    done
fi

# data_args <prefix> <set> [context scp]: the --<prefix>_data_path_and_name_and_type options.
data_args() {
    local prefix=$1 dset=$2 context=${3:-}
    echo "--${prefix}_data_path_and_name_and_type ${dumpdir}/raw/${dset}/wav.scp,speech,sound"
    echo "--${prefix}_data_path_and_name_and_type ${dumpdir}/raw/${dset}/text,text,text"
    [ -n "${context}" ] && echo "--${prefix}_data_path_and_name_and_type ${context},context,kaldi_ark"
    return 0
}
stats_dir=${expdir}/stats_${token_type}

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "Stage 5: ESPnet collect-stats: ${dumpdir}/raw -> ${stats_dir}"
    if up_to_date "${stats_dir}/.done" "${dumpdir}/raw/${train_set}/.done" "${token_list}"; then
        log "  ${stats_dir} is up to date"
    else
        first_variant=${variants%% *}
        # shellcheck disable=SC2046,SC2086
        ${train_cmd} "${stats_dir}/stats.log" \
            ${python} -m espnet_gcft.bin.gcft_train --collect_stats true --use_preprocessor true \
            --config "${train_config_dir}/train_${first_variant}.yaml" \
            --token_type "${token_type}" --token_list "${token_list}" \
            $([ "${token_type}" = bpe ] && echo "--bpemodel ${token_dir}/bpe.model") \
            $(data_args train "${train_set}") $(data_args valid "${valid_set}") \
            --train_shape_file "${dumpdir}/raw/${train_set}/wav.scp" \
            --valid_shape_file "${dumpdir}/raw/${valid_set}/wav.scp" \
            --batch_type unsorted --batch_size 8 --output_dir "${stats_dir}" ${model_args}
        touch "${stats_dir}/.done"
    fi
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    # Variants train one after another, or --train_jobs at a time; on a CPU the
    # cores are shared out (small models use one core better than two).
    threads=$(( $(nproc) / train_jobs )); [ "${threads}" -ge 1 ] || threads=1
    declare -A train_pids=()
    train_failed=()
    wait_training() {  # wait for one training job; remember a failure
        local done_pid variant status
        set +e; wait -n -p done_pid; status=$?; set -e
        for variant in "${!train_pids[@]}"; do
            if [ "${train_pids[${variant}]}" = "${done_pid}" ]; then
                unset "train_pids[${variant}]"
                [ "${status}" -eq 0 ] || train_failed+=("${expdir}/${variant}/train.log")
            fi
        done
    }
    for variant in ${variants}; do
        source=$(context_source "${variant}")
        config=${train_config_dir}/train_${variant}.yaml
        dir=${expdir}/${variant}
        log "Stage 6: train ${variant} (${config}, context: ${source:-none}) -> ${dir}"
        train_context=""
        valid_context=""
        if [ -n "${source}" ]; then
            train_context=${dumpdir}/context/${train_set}/${source}/emb_${pooling}.scp
            valid_context=${dumpdir}/context/${valid_set}/${source}/emb_${pooling}.scp
        fi
        if up_to_date "${dir}/.done" "${config}" "${stats_dir}/.done" ${train_context} ${valid_context}; then
            log "  ${dir} is up to date"
            continue
        fi
        while [ "${#train_pids[@]}" -ge "${train_jobs}" ]; do wait_training; done
        # shellcheck disable=SC2046,SC2086
        (
            export OMP_NUM_THREADS=${threads}
            ${cuda_cmd} --gpu "${ngpu}" --num_threads "${threads}" "${dir}/train.log" \
                ${python} -m espnet_gcft.bin.gcft_train --config "${config}" --ngpu "${ngpu}" \
                --token_type "${token_type}" --token_list "${token_list}" \
                $([ "${token_type}" = bpe ] && echo "--bpemodel ${token_dir}/bpe.model") \
                $(data_args train "${train_set}" "${train_context}") \
                $(data_args valid "${valid_set}" "${valid_context}") \
                --train_shape_file "${stats_dir}/train/speech_shape" \
                --valid_shape_file "${stats_dir}/valid/speech_shape" \
                --resume true --output_dir "${dir}" ${model_args} ${train_args}
            touch "${dir}/.done"
        ) &
        train_pids[${variant}]=$!
    done
    while [ "${#train_pids[@]}" -gt 0 ]; do wait_training; done
    if [ "${#train_failed[@]}" -gt 0 ]; then
        log "Error: training failed, see ${train_failed[*]}"
        exit 1
    fi
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    for variant in ${variants}; do
        source=$(context_source "${variant}")
        for dset in ${test_sets}; do
            out=${expdir}/${variant}/decode_${dset}
            data=${dumpdir}/raw/${dset}
            log "Stage 7: decode and score ${variant} on ${dset} -> ${out}"
            context_opt=()
            context_scp=""
            scored=true
            has_references "${data}" || scored=false
            if needs_context_at_inference "${variant}" && ! "${scored}"; then
                log "  skipped: ${variant} needs the previous utterance's text, which blind ${dset} lacks"
                continue
            fi
            if needs_context_at_inference "${variant}"; then
                context_scp=${dumpdir}/context/${dset}/${source}/emb_${pooling}.scp
                context_opt=(--data_path_and_name_and_type "${context_scp},context,kaldi_ark")
            fi
            model=${expdir}/${variant}/${inference_model}
            result=${out}/score.json
            "${scored}" || result=${out}/hyp.trn
            if up_to_date "${result}" "${model}" "${data}/wav.scp" ${context_scp} "${inference_config}"; then
                log "  ${result} is up to date"
                continue
            fi
            mkdir -p "${out}/log"
            split_dir=${out}/split${inference_nj}
            mkdir -p "${split_dir}"
            awk -v n="${inference_nj}" -v dir="${split_dir}" \
                '{ print > (dir "/wav." ((NR - 1) % n + 1) ".scp") }' "${data}/wav.scp"
            ${decode_cmd} --gpu "${ngpu}" JOB=1:"${inference_nj}" "${out}/log/decode.JOB.log" \
                ${python} -m espnet_gcft.bin.gcft_inference --model "${expdir}/${variant}" \
                --model_file "${inference_model}" --config "${inference_config}" \
                --data_path_and_name_and_type "${split_dir}/wav.JOB.scp,speech,sound" \
                "${context_opt[@]}" --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" \
                --output_dir "${split_dir}/JOB"
            ${python} -m espnet_gcft.bin.make_trn --data_dir "${data}" --out_dir "${out}" \
                $(for ((i = 1; i <= inference_nj; i++)); do echo "${split_dir}/${i}"; done)
            if ! "${scored}"; then
                log "  ${dset} has no references: hypotheses in ${out}/hyp.trn, not scored"
                continue
            fi
            context_words_opt=()
            [ -s "${data}/context_words" ] && context_words_opt=(--context_words "${data}/context_words")
            ${python} -m espnet_gcft.bin.score --task "${task}" --ref "${out}/ref.trn" \
                --hyp "${out}/hyp.trn" --result_txt "${out}/result.txt" "${context_words_opt[@]}" \
                > "${out}/score.json.tmp"
            mv "${out}/score.json.tmp" "${out}/score.json"
            log "  $(cat "${out}/score.json")"
        done
    done
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    log "Stage 8: ${results}, bar chart and packed models: ${expdir} -> ${results}"
    scored_sets=$(for dset in ${test_sets}; do
        if has_references "${dumpdir}/raw/${dset}"; then echo "${dset}"; fi; done | tr '\n' ' ')
    if [ -n "${scored_sets// /}" ]; then
        # shellcheck disable=SC2086
        ${python} -m espnet_gcft.bin.make_results --exp_dir "${expdir}" --variants ${variants} \
            --test_sets ${scored_sets} --task "${task}" --context_dir "${dumpdir}/context" \
            --out "${results}" --plot "${expdir}/results.png"
    else
        log "  no test set has references: no RESULTS.md"
    fi
    for variant in ${variants}; do
        packed=${expdir}/${variant}/packed.zip
        model=${expdir}/${variant}/${inference_model}
        if up_to_date "${packed}" "${model}"; then
            continue
        fi
        ${python} -m espnet2.bin.pack asr --asr_train_config "${expdir}/${variant}/config.yaml" \
            --asr_model_file "${model}" --outpath "${packed}" > "${expdir}/${variant}/pack.log"
    done
fi

log "Successfully finished in ${SECONDS} s"
