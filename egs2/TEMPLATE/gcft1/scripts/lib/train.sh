# ESPnet training of gcft.sh's stage 6 (sourced by gcft.sh).

# data_args <prefix> <set> [context scp]: the --<prefix>_data_path_and_name_and_type options.
data_args() {
    local prefix=$1 dset=$2 context=${3:-}
    echo "--${prefix}_data_path_and_name_and_type ${dumpdir}/raw/${dset}/wav.scp,speech,sound"
    echo "--${prefix}_data_path_and_name_and_type ${dumpdir}/raw/${dset}/text,text,text"
    [ -n "${context}" ] && echo "--${prefix}_data_path_and_name_and_type ${context},context,kaldi_ark"
    return 0
}

# train_key <config> <train context> <valid context> <init checkpoint> [<variant args>]: what a training run depends on.
train_key() {
    local contents=() file excluded=()
    # the embeddings' and the initial checkpoint's content, not only their paths
    for file in "${2%.scp}.ark" "${3%.scp}.ark" "$4"; do
        [ -n "${file%.ark}" ] && contents+=("file:${file}")
    done
    [ -n "$4" ] && [ -n "${init_excludes}" ] && excluded=("init_excludes=${init_excludes}")
    step_key "file:$1" "model_args=${model_args}" "train_args=${train_args}${5:+ $5}" "seed=${seed}" \
        "context=$2 $3" "init=$4" "file:${token_list}" "${contents[@]}" "${excluded[@]}"
}

# train_model <dir> <config> <threads> <train context> <valid context> <init checkpoint> [<variant args>]:
# ESPnet training into <dir>, resumed when it stopped half-way with the same options,
# restarted from scratch when the options changed or a finished run's inputs did
# (the caller found it out of date).
train_model() {
    local dir=$1 config=$2 threads=$3 train_context=$4 valid_context=$5 init=$6 variant_args=${7:-} key
    key=$(train_key "${config}" "${train_context}" "${valid_context}" "${init}" "${variant_args}")
    if [ -e "${dir}/.done" ]; then
        log "  ${dir} is out of date (its options or inputs changed): training it again from scratch"
        rm -rf "${dir}"
    elif [ -d "${dir}" ] && [ "$(cat "$(stamp_file "${dir}/.started")" 2>/dev/null)" != "${key}" ]; then
        log "  ${dir} stopped half-way with other options: training it again from scratch"
        rm -rf "${dir}"
    fi
    mkdir -p "${dir}"
    # a save cut short by a kill leaves its temporary file (checkpoints are renamed into place)
    find "${dir}" -maxdepth 1 -name '.*.tmp' -delete
    touch "${dir}/.started"
    write_stamp "${dir}/.started" "${key}"
    local init_opt=() launch=("${python}") runner_opts=() dist_opts=() rank_ngpu=${ngpu} job_gpu=${ngpu}
    [ -n "${init}" ] && init_opt=(--init_param "${init}${init_excludes:+:::${init_excludes}}")
    if [ "${train_procs}" -gt 1 ]; then
        # ESPnet's DDP with an external launcher: one process per rank, each
        # with one GPU (or the CPU with gloo); ESPnet reads the ranks from the
        # launcher's environment and shards every mini-batch over them.
        local backend=nccl
        [ "${ngpu}" -eq 0 ] && backend=gloo
        if [ "${ngpu}" -gt 0 ]; then
            rank_ngpu=1  # per rank; the job asks for one GPU per rank on each node
            job_gpu=$(( (train_procs + train_nodes - 1) / train_nodes ))
        fi
        dist_opts=(--multiprocessing_distributed false --dist_backend "${backend}")
        # the ranks share the job's cores (--num_threads is per rank)
        threads=$(( threads / train_procs )); [ "${threads}" -ge 1 ] || threads=1
        if [ "${dist_launcher}" = torchrun ]; then
            launch=("${python}" -m torch.distributed.run --standalone --nproc_per_node "${train_procs}")
        else
            launch=(scripts/srun_ranks.sh "${python}")
            runner_opts=(--ntasks "${train_procs}" --nodes "${train_nodes}")
        fi
    fi
    launch+=(-m)
    # shellcheck disable=SC2046,SC2086
    OMP_NUM_THREADS=${threads} ${cuda_cmd} --gpu "${job_gpu}" --num_threads "${threads}" \
        "${runner_opts[@]}" "${dir}/train.log" \
        "${launch[@]}" espnet_gcft.bin.gcft_train --config "${config}" --ngpu "${rank_ngpu}" "${dist_opts[@]}" \
        --seed "${seed}" --token_type "${token_type}" --token_list "${token_list}" ${bpe_opt} \
        $(data_args train "${train_set}" "${train_context}") \
        $(data_args valid "${valid_set}" "${valid_context}") \
        --train_shape_file "${stats_dir}/train/speech_shape" \
        --valid_shape_file "${stats_dir}/valid/speech_shape" \
        "${init_opt[@]}" --resume true --output_dir "${dir}" ${model_args} ${train_args} ${variant_args}
    touch "${dir}/.done"
    write_stamp "${dir}/.done" "${key}"
}
