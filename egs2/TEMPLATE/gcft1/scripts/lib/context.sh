# The context steps of gcft.sh's stages 3, 4, 6 and 7 (sourced by gcft.sh, after
# the variant registry and layout: variant_*, prev_source, rows_suffix, gen_source).

# generation_key <prompt> <text source>: what a generate_context output depends on.
generation_key() {
    local hash
    hash=$(${python} -m espnet_gcft.bin.recipe_info prompt_hash "$1" --prompt_file "${prompt_file}")
    step_key "prompt=$1 ${hash}" "llm=${llm} ${llm_gguf_file} ${llm_backend}" "num_prev=${text_num_prev}" \
        "max_new_tokens=${gen_max_new_tokens}" "gen_args=${gen_args}" "text=$2"
}
embed_key() { step_key "encoder=${text_encoder}" "pooling=${pooling}"; }

# generate <log dir> <data dir> <text file> <out dir> <prompt> [<data dir> <text file> <out dir> <prompt> ...]:
# LLM context of every utterance from the previous text(s) in <text file>, for each
# output (4 words each) that is not fresh; all of them in one generate_context run
# (one per shard with --gen_nj), so the LLM is loaded once per run and shard, not
# once per output. A previous text already generated for another output of the run
# or any set's gen_<prompt> is reused, not generated again. Logs: <log dir>/generate[.JOB].log.
generate() {
    local log_dir=$1 data text out prompt key reuse i
    local jobs=() outs=() datas=() keys=() job_prompts=() gen_opts reuse_opts=()
    shift
    while [ $# -gt 0 ]; do
        data=$1 text=$2 out=$3 prompt=$4
        shift 4
        key=$(generation_key "${prompt}" "${text}")
        # shellcheck disable=SC2086
        if fresh "${out}/text" "${key}" "${text}" "${data}/utt2prev" ${prompt_file}; then
            log "  ${out}/text is up to date"
            continue
        fi
        log "  generating ${out}"
        jobs+=(--job "${data}" "$(realpath --relative-to="${data}" "${text}")" "${prompt}"
               "${out}$([ "${gen_nj}" -le 1 ] || echo /shard.JOB)")
        outs+=("${out}") datas+=("${data}") keys+=("${key}")
        [[ " ${job_prompts[*]} " == *" ${prompt} "* ]] || job_prompts+=("${prompt}")
    done
    [ "${#outs[@]}" -gt 0 ] || return 0
    # every set's outputs of the prompt in this dump dir, this run's or another's (e.g. the
    # asr sets' when an ner run's sets hold the same sentences): a record is reused only
    # when its prompt, model, parameters and input match
    for prompt in "${job_prompts[@]}"; do
        for reuse in "${dumpdir}"/context/*/"${gen_source[${prompt}]}"; do
            [ -d "${reuse}" ] && reuse_opts+=(--reuse_dir "${reuse}")
        done
    done
    gen_opts=("${prompt_file_opt[@]}" --model "${llm}" --backend "${llm_backend}" --device "${llm_device}"
              --batch_size "${gen_batch_size}" --max_new_tokens "${gen_max_new_tokens}"
              --num_prev "${text_num_prev}" --no_progress "${reuse_opts[@]}")
    [ -n "${llm_gguf_file}" ] && gen_opts+=(--gguf_file "${llm_gguf_file}")
    # shellcheck disable=SC2206
    gen_opts+=(${gen_args})
    log "  ${#outs[@]} output(s) in one generate_context run (${gen_nj} shard(s); log: ${log_dir})"
    if [ "${gen_nj}" -le 1 ]; then
        ${gen_cmd} --gpu "${gen_gpu}" "${log_dir}/generate.log" \
            ${python} -m espnet_gcft.bin.generate_context "${gen_opts[@]}" "${jobs[@]}"
    else
        # jobs numbered from 1, as ESPnet's run.pl/queue.pl/slurm.pl require; each
        # shard job writes its shard of every output
        ${gen_cmd} --gpu "${gen_gpu}" JOB=1:"${gen_nj}" "${log_dir}/generate.JOB.log" \
            ${python} -m espnet_gcft.bin.generate_context "${gen_opts[@]}" \
            --shard "JOB/${gen_nj}" "${jobs[@]}"
        for i in "${!outs[@]}"; do
            ${python} -m espnet_gcft.bin.merge_context --data_dir "${datas[${i}]}" --out_dir "${outs[${i}]}" \
                $(for ((j = 1; j <= gen_nj; j++)); do echo "${outs[${i}]}/shard.${j}"; done)
        done
    fi
    for i in "${!outs[@]}"; do
        write_stamp "${outs[${i}]}/text" "${keys[${i}]}"
    done
}

# embed <data dir> <source dirs...>: embed the sources' text, one encoder load for all
# that are out of date.
embed() {
    local data=$1 dir key texts=() out_dirs=()
    shift
    key=$(embed_key)
    for dir in "$@"; do
        if fresh "${dir}/emb_${pooling}.scp" "${key}" "${dir}/text"; then
            log "  ${dir}/emb_${pooling}.scp is up to date"
        else
            texts+=("${dir}/text")
            out_dirs+=("${dir}")
        fi
    done
    [ "${#texts[@]}" -gt 0 ] || return 0
    ${embed_cmd} --gpu "${embed_gpu}" "$(dirname "${out_dirs[0]}")/log/embed_${pooling}.log" \
        ${python} -m espnet_gcft.bin.embed_context --text "${texts[@]}" \
        --out_dir "${out_dirs[@]}" --data_dir "${data}" \
        --encoder "${text_encoder}" --pooling "${pooling}" --device "${embed_device}" \
        --no_progress
    for dir in "${out_dirs[@]}"; do
        write_stamp "${dir}/emb_${pooling}.scp" "${key}"
    done
}

# audio_contexts: the prev_audio source of every set, when a variant reads it: the
# frozen upstream (the shared pretrained checkpoint's with --pretrain_config,
# else the audio variant's config's) on the previous utterance's audio.
audio_contexts() {
    local variant config="" checkpoint=() key dset out data
    for variant in ${variants}; do
        uses_audio_context "${variant}" && config=${train_config_dir}/${variant_config[${variant}]}
    done
    [ -n "${config}" ] || return 0
    if [ -n "${init_param}" ]; then
        config=$(dirname "${init_param}")/config.yaml
        checkpoint=(--checkpoint "${init_param}")
    fi
    key=$(step_key "file:${config}" "checkpoint=${checkpoint[*]}" \
        ${checkpoint[1]:+"file:${checkpoint[1]}"} "pooling=${pooling}")
    for dset in ${all_sets}; do
        data=${dumpdir}/raw/${dset}
        out=${dumpdir}/context/${dset}/prev_audio
        # shellcheck disable=SC2086
        if fresh "${out}/emb_${pooling}.scp" "${key}" "${data}/wav.scp" "${data}/utt2prev" \
                "${config}" ${checkpoint[1]:-}; then
            log "  ${out}/emb_${pooling}.scp is up to date"
            continue
        fi
        log "  audio context of ${dset}: the upstream of ${config}${checkpoint[1]:+ (${checkpoint[1]})} on the previous audio -> ${out}"
        ${embed_cmd} --gpu "${embed_gpu}" "${out}/log/embed_audio_${pooling}.log" \
            ${python} -m espnet_gcft.bin.embed_audio_context --data_dir "${data}" \
            --config "${config}" "${checkpoint[@]}" --pooling "${pooling}" \
            --device "${embed_device}" --out_dir "${out}" --no_progress
        write_stamp "${out}/emb_${pooling}.scp" "${key}"
    done
}

# stack_rows: with --prev_mode rows, each variant's source of every set stacked
# over the N previous utterances (<source>_rows<N>).
stack_rows() {
    [ -n "${rows_suffix}" ] || return 0
    local variant base dset src out
    for variant in ${variants}; do
        base=${variant_base_source[${variant}]}
        [ -n "${base}" ] || continue
        for dset in ${all_sets}; do
            src=${dumpdir}/context/${dset}/${base}
            [ -e "${src}/emb_${pooling}.scp" ] || continue  # no text contexts for a blind set
            out=${src}${rows_suffix}
            run_step "${out}/emb_${pooling}.scp" "$(step_key "rows=${num_prev}" "pooling=${pooling}")" \
                "${src}/emb_${pooling}.scp" "${dumpdir}/raw/${dset}/utt2prev" -- \
                ${python} -m espnet_gcft.bin.stack_context --data_dir "${dumpdir}/raw/${dset}" \
                --rows "${num_prev}" --source_dir "${src}" --scp_name "emb_${pooling}.scp" \
                --out_dir "${out}"
        done
    done
}

# condition_context <set> <source> <condition> [more inputs...]: the source's
# contexts re-paired or degraded by the condition (context_condition), in
# dump/context/<set>/<source>_<condition>; the inputs beyond the source's scp
# and utt2prev are the condition's own (the homophones for opposite).
condition_context() {
    local dset=$1 source=$2 condition=$3 dir
    shift 3
    dir=${dumpdir}/context/${dset}/${condition_source["${source} ${condition}"]}
    run_step "${dir}/emb_${pooling}.scp" "$(step_key "condition=${condition}" "pooling=${pooling}")" \
        "${dumpdir}/context/${dset}/${source}/emb_${pooling}.scp" "${dumpdir}/raw/${dset}/utt2prev" "$@" -- \
        ${python} -m espnet_gcft.bin.context_condition --condition "${condition}" \
        --data_dir "${dumpdir}/raw/${dset}" --source_dir "${dumpdir}/context/${dset}/${source}" \
        --scp_name "emb_${pooling}.scp" --out_dir "${dir}"
}
