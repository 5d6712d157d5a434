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
expdir=""                # where experiments go (default: exp, or exp/<ssl> with --ssl)
full_disk_kb=1024        # a failed stage whose output filesystem has less free space (KiB) is reported as a full disk
lock_grace=60            # seconds to wait for a killed run's last processes to let go of an output
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
results_extra=""         # more exp dir names (e.g. sweep points: inject_gt_rows_n3) whose decodes stage 8 adds to RESULTS
results_records=""       # RESULTS.json files of other runs (e.g. the NER run) whose records stage 8 adds
results=""               # stage 8 table of --expdir (default: RESULTS.md, or RESULTS_<ssl>.md with --ssl; RESULTS.json and RESULTS.png go next to it)
ssl=""                   # S3PRL upstream to fine-tune (wav2vec2, hubert, wavlm_base_plus, ...): sets frontend_conf.upstream of every config (empty: as the configs say)
# == Context ==
prompts="next_sentence title"  # LLM prompts, one source gen_<prompt> each
prompt_file=""           # YAML file with more prompts
context_prompt=""        # prompt whose generations gen_inject and gcaf use (default: first of prompts)
num_prev=1               # previous utterances in the context (joined into one text, or one row each: --prev_mode)
prev_mode=join           # join: the N previous texts joined into one LLM/encoder input | rows: each previous utterance's context is its own row (L = N)
context_tag=""           # names the generated sources gen_<prompt>[_n<N>]_<context_tag> (e.g. a sweep over --llm keeps each LLM's outputs apart)
llm=smollm2-135m-instruct  # causal LM: embedded name, local dir or hub name
llm_gguf_file=""         # GGUF file inside --llm
llm_backend=transformers # transformers | vllm
llm_device=cpu           # device of the LLM
gen_batch_size=16        # prompts per LLM call
gen_max_new_tokens=32    # longest generated context in tokens
gen_nj=1                 # generation shards (parallel jobs, e.g. Slurm array tasks)
gen_args=""              # more generate_context options, e.g. sampling: "--do_sample --temperature 0.7 --seed 1"
text_encoder=all-minilm-l6-v2  # text encoder: embedded name, local dir or hub name
pooling=mean             # cls | mean | sequence (a gcaf student with one query distils the sequence's mean)
embed_device=cpu         # device of the text encoder
context_report=true      # stage 4 also writes dump/context/<set>/report.{json,md} (how much each source tells)
# == Training and decoding ==
variants="baseline inject_gt gen_inject gcaf"  # variants to train and compare (also audio_inject audio_gcaf: the previous utterance's audio as context)
tag=""                   # a sweep point: variants train into <expdir>/<variant>_<tag> (stats, pretraining and the hyp condition's baseline stay shared)
train_config_dir=conf    # holds train_<variant>.yaml for every variant
model_args=""            # gcft_train options that shape the model, used by collect-stats and training (e.g. the SSL upstream)
train_args=""            # extra options for gcft_train, training only (the shared pretraining and every variant)
variant_train_args=""    # extra options for the variants' training only, not the shared pretraining (a sweep point's, e.g. --model_conf distill_weight=0.1)
train_jobs=1             # variants trained at the same time (CPU threads are shared out)
train_procs=1            # DDP ranks per training (ESPnet's DDP; gloo on CPUs with --ngpu 0, one GPU per rank otherwise)
dist_launcher=torchrun   # how the ranks start: torchrun (one machine, inside one job) | slurm (one Slurm job of train_procs tasks, srun starts them: scripts/srun_ranks.sh; needs cmd_backend=slurm)
train_nodes=1            # nodes of a --dist_launcher slurm training (train_procs ranks spread over them)
pretrain_config=""       # context-free config trained once into <expdir>/pretrain; every variant starts from it (ESPnet --init_param)
init_model=""            # instead of --pretrain_config: every variant starts from this checkpoint (e.g. the asr run's exp/pretrain/valid.loss.ave.pth for --task ner); with another token list its layers indexed by token keep their random init
seed=0                   # training seed (ESPnet --seed) of the pretraining and every variant
inference_config=conf/decode.yaml  # gcft_inference options (YAML)
inference_nj=1           # decoding jobs per test set
decode_jobs=1            # decodes (variants x conditions) run at the same time (CPU threads are shared out)
inference_model=valid.loss.ave.pth  # checkpoint used for decoding (and as --init_param)
conditions="shuffled opposite hyp"  # decode-time context conditions of the variants that read context at inference, besides gt: shuffled opposite hyp replaced<p> dropped<p> (degraded: a fraction p of the contexts replaced by another session's or dropped)
train_degrade=""         # replaced<p> | dropped<p>: degrade the training and validation contexts the same way
hyp_variant=baseline     # whose test hypotheses are the previous text of the hyp condition
# </options>

help_message="Usage: $0 --train_set <set> --valid_set <set> --test_sets \"<sets>\" [options]"
command_line="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then
    __gcft_help "$0" >&2
    echo "${help_message}" >&2
    exit 2
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
for name in train_set valid_set test_sets; do
    if [ -z "${!name}" ]; then
        echo "${help_message}" >&2
        echo "$0: --${name} is required" >&2
        exit 2
    fi
done
case "${task}" in asr|ner|sentiment) ;; *) echo "$0: --task must be asr, ner or sentiment" >&2; exit 2 ;; esac
case "${dist_launcher}" in torchrun|slurm) ;; *) echo "$0: --dist_launcher must be torchrun or slurm" >&2; exit 2 ;; esac
if [ "${dist_launcher}" = slurm ] && [ "${train_procs}" -gt 1 ] && [ "${cmd_backend:-local}" = local ]; then
    echo "$0: --dist_launcher slurm starts the ranks with srun inside a Slurm job: use cmd_backend=slurm" >&2
    exit 2
fi
case "${token_type}" in char|bpe) ;; *) echo "$0: --token_type must be char or bpe" >&2; exit 2 ;; esac
is_degraded() { [[ "$1" =~ ^(replaced|dropped)(0(\.[0-9]+)?|1(\.0*)?)$ ]]; }
for condition in ${conditions}; do
    case "${condition}" in shuffled|opposite|hyp) ;;
        *) is_degraded "${condition}" || { echo "$0: --conditions takes shuffled, opposite, hyp," \
            "replaced<p> and dropped<p> (0 <= p <= 1), got ${condition}" >&2; exit 2; } ;;
    esac
done
if [ -n "${train_degrade}" ] && ! is_degraded "${train_degrade}"; then
    echo "$0: --train_degrade takes replaced<p> or dropped<p> (0 <= p <= 1), got ${train_degrade}" >&2
    exit 2
fi
case "${prev_mode}" in join|rows) ;; *) echo "$0: --prev_mode must be join or rows" >&2; exit 2 ;; esac
if [ -n "${init_model}" ] && [ -n "${pretrain_config}" ]; then
    echo "$0: --init_model and --pretrain_config both say where the variants start: give one" >&2
    exit 2
fi
# (stages 4-6 read it: the audio context's upstream, the variants' start)
if [ -n "${init_model}" ] && [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 4 ] && [ ! -f "${init_model}" ]; then
    echo "$0: --init_model ${init_model}: no such checkpoint" >&2
    exit 2
fi
# the checkpoint every variant starts from (ESPnet --init_param), if any
init_param=${init_model}
[ -n "${pretrain_config}" ] && init_param=${expdir}/pretrain/${inference_model}
# with --init_model: the layers the run's token list leaves out (set in stage 6)
init_excludes=""
context_prompt=${context_prompt:-${prompts%% *}}
# Where the options put the contexts: the default run keeps dump/context/<set>/prev_gt
# and gen_<prompt>; N joined previous texts add _n<N>; rows mode stacks the N=1
# sources into <source>_rows<N>; --context_tag names generated sources apart.
text_num_prev=$([ "${prev_mode}" = join ] && echo "${num_prev}" || echo 1)
text_suffix=$([ "${text_num_prev}" -gt 1 ] && echo "_n${text_num_prev}" || true)
rows_suffix=$([ "${prev_mode}" = rows ] && [ "${num_prev}" -gt 1 ] && echo "_rows${num_prev}" || true)
prev_source=prev_gt${text_suffix}
gen_source() { echo "gen_$1${text_suffix}${context_tag:+_${context_tag}}"; }
all_sets=$(echo "${train_set} ${valid_set} ${test_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
# an ner or sentiment run's targets hold tags or labels: its own token list, so that
# it does not replace the asr run's in the same recipe dir
token_dir=data/token_list/${token_type}$([ "${token_type}" = bpe ] && echo "${nbpe}" || true)$([ "${task}" = asr ] || echo "_${task}")
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

# Option stamps: a step's output <dir>/<name> has <dir>/.<name>.stamp holding
# the options that made it (step_key); fresh() wants the same options and
# inputs older than the output.
stamp_file() {
    local name
    name=$(basename "$1")
    echo "$(dirname "$1")/${name/#[^.]/.${name:0:1}}.stamp"
}

# step_key <words...>: one line per word; "file:<path>" stands for the file's
# content (hashed), so an edited config changes the key.
step_key() {
    local word path
    for word in "$@"; do
        if [[ "${word}" == file:* ]]; then
            path=${word#file:}
            if [ -f "${path}" ]; then
                echo "${word} $(sha256sum < "${path}" | cut -c1-16)"
            else
                echo "${word} absent"
            fi
        else
            echo "${word}"
        fi
    done
}

# fresh <output> <key> <inputs...>: up to date and made with the same options.
fresh() {
    local output=$1 key=$2 stamp
    shift 2
    up_to_date "${output}" "$@" || return 1
    stamp=$(stamp_file "${output}")
    [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${key}" ]
}

# write_stamp <output> <key>
write_stamp() { printf '%s\n' "$2" > "$(stamp_file "$1")"; }

# base_source <variant>: the one-entry-per-utterance source a variant's context comes from ("" for none).
base_source() {
    case "$1" in
        baseline) echo "" ;;
        inject_gt) echo "${prev_source}" ;;
        gen_inject|gcaf) gen_source "${context_prompt}" ;;
        audio_inject|audio_gcaf) echo "prev_audio" ;;
        *) echo "$0: unknown variant $1 (baseline inject_gt gen_inject gcaf audio_inject audio_gcaf)" >&2; return 2 ;;
    esac
}

# context_source <variant>: which context source a variant reads ("" for none).
context_source() {
    local base
    base=$(base_source "$1")
    echo "${base}${base:+${rows_suffix}}"
}

# needs_context_at_inference <variant>
needs_context_at_inference() { [ "$1" = inject_gt ] || [ "$1" = gen_inject ] || [ "$1" = audio_inject ]; }
# needs_text_at_inference <variant>: reads the previous utterance's text (a blind set has none)
needs_text_at_inference() { [ "$1" = inject_gt ] || [ "$1" = gen_inject ]; }
uses_audio_context() { [ "$1" = audio_inject ] || [ "$1" = audio_gcaf ]; }
# variant_dir <variant>: where a variant trains (tagged for a sweep point)
variant_dir() { echo "${expdir}/$1${tag:+_${tag}}"; }
for variant in ${variants}; do base_source "${variant}" > /dev/null || exit 2; done
if [ "${pooling}" = cls ] && for v in ${variants}; do uses_audio_context "${v}" && echo yes; done | grep -q yes; then
    echo "$0: the audio context has no [CLS] frame: use --pooling mean or sequence with audio_inject/audio_gcaf" >&2
    exit 2
fi

# has_references <data dir>: the set has a text (a blind test set has none).
has_references() { [ -e "$1/text" ]; }

# generation_key <prompt> <text source>: what a generate_context output depends on.
generation_key() {
    local hash
    hash=$(${python} -c 'import sys; from espnet_gcft.context.prompts import get_prompt; print(get_prompt(sys.argv[1], sys.argv[2] or None).hash)' "$1" "${prompt_file}")
    step_key "prompt=$1 ${hash}" "llm=${llm} ${llm_gguf_file} ${llm_backend}" "num_prev=${text_num_prev}" \
        "max_new_tokens=${gen_max_new_tokens}" "gen_args=${gen_args}" "text=$2"
}
embed_key() { step_key "encoder=${text_encoder}" "pooling=${pooling}"; }

# A pool of background jobs: pool_run <limit> <name> <command...> starts a job
# once fewer than <limit> run; pool_wait waits for them all and fails, naming
# them, if any failed.
declare -A pool_pids=()
pool_failed=()
pool_wait_one() {
    local done_pid name status
    set +e; wait -n -p done_pid; status=$?; set -e
    for name in "${!pool_pids[@]}"; do
        if [ "${pool_pids[${name}]}" = "${done_pid}" ]; then
            unset "pool_pids[${name}]"
            [ "${status}" -eq 0 ] || pool_failed+=("${name}")
        fi
    done
}
pool_run() {
    local limit=$1 name=$2
    shift 2
    while [ "${#pool_pids[@]}" -ge "${limit}" ]; do pool_wait_one; done
    "$@" &
    pool_pids[${name}]=$!
}
pool_wait() {
    while [ "${#pool_pids[@]}" -gt 0 ]; do pool_wait_one; done
    if [ "${#pool_failed[@]}" -gt 0 ]; then
        log "Error: failed: ${pool_failed[*]}"
        exit 1
    fi
}

# Ctrl-C (SIGINT to the whole process group) or SIGTERM: stop every job this
# run started. Background jobs of a script ignore SIGINT (bash starts them so),
# so a Slurm runner under a pool job would never see the Ctrl-C and its jobs
# would keep running; each descendant gets SIGTERM instead, on which
# utils/slurm.sh cancels its job with scancel.
descendants() {
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        descendants "${child}"
        echo "${child}"
    done
}
on_interrupt() {
    trap '' INT TERM
    log "Interrupted: stopping the jobs of this run"
    local pids
    pids=$(descendants $$)
    # shellcheck disable=SC2086
    [ -z "${pids}" ] || kill -TERM ${pids} 2>/dev/null || true
    wait 2>/dev/null || true
    exit "$1"
}
trap 'on_interrupt 130' INT
trap 'on_interrupt 143' TERM

# A stage that fails on a full disk says so in one line, naming the stage and
# the output dir whose filesystem filled up: one that is (nearly) full now, or
# one holding a log of this run that reports ENOSPC (a failed checkpoint save
# removes its temporary file, so the space may be back by the time we look).
# Nothing is stamped before it is complete and checkpoints are renamed into
# place, so after space is freed the same command redoes the torn step and
# keeps everything made before it.
current_stage=""
on_exit() {
    local rc=$1 dir avail mount full=""
    # 3: refused or cannot lock; 130/143: interrupted (on_interrupt said so)
    case "${rc}" in 0|3|130|143) return 0 ;; esac
    [ -n "${current_stage}" ] || return 0
    for dir in "${dumpdir}" "${expdir}" data "$(dirname "${results}")"; do
        [ -d "${dir}" ] || continue
        read -r avail mount < <(df -Pk "${dir}" 2>/dev/null | awk 'NR == 2 {print $4, $6}') || continue
        # (find may also hit an unreadable dir, e.g. a mount point's lost+found: only its output counts)
        if [ "${avail:-${full_disk_kb}}" -lt "${full_disk_kb}" ] || [ -n "$(find "${dir}" -name '*.log' \
                -newermt "${run_started/T/ }" -exec grep -qs "No space left on device" {} \; -print -quit 2>/dev/null)" ]; then
            echo "$0: stage ${current_stage} failed: no space left on the filesystem of ${dir} (${mount}: ${avail} KiB free now); free space there and run the same command again" >&2
            return 0
        fi
    done
}
trap 'on_exit $?' EXIT

# One writer per output. A run claims, before its first stage, what only it may
# write: the data and dump/raw dirs of its sets (stages 1-2), its variants' exp
# dirs (stages 6-8: exp/<variant>[_<tag>]) and its RESULTS (stage 8); it refuses
# to start, naming the holder, when another live run holds one of them. Steps
# that runs with different outputs may share (context texts and embeddings,
# collect-stats, the shared pretraining) are taken in turn: a run waits for the
# one writing them, then finds them up to date. A lock is flock(1) on
# <dir>/.locks/<name>.lock through a descriptor the run and all its jobs share,
# so it ends with the run's last process however the run ends (kill -9 of its
# process group included); the file names the last holder: pid, start time, host, dir.
# The kernel tears a SIGKILLed process down in its own time (a large Python
# process takes a moment), so for a while after `kill -9 -<pgid>` a job can
# still hold a lock whose named holder is gone: a run that meets a lock held
# for a holder no longer alive on this host waits up to --lock_grace seconds
# for it instead of refusing.
run_started=$(date '+%Y-%m-%dT%H:%M:%S')
run_host=$(hostname 2>/dev/null || uname -n)
lock_file() { echo "$(dirname "$1")/.locks/$(basename "$1").lock"; }
# open_lock <output>: open its lock file on a new descriptor, stored in lock_fd.
open_lock() {
    local lock
    lock=$(lock_file "$1")
    mkdir -p "$(dirname "${lock}")"
    exec {lock_fd}>>"${lock}"
}
name_holder() {
    printf 'pid %s, started %s, on %s, in %s\n' "$$" "${run_started}" "${run_host}" "${PWD}" > "$(lock_file "$1")"
}
# holder_gone <output>: true when the lock file names a holder on this host that is
# no longer running (exited, or a zombie not yet reaped)
holder_gone() {
    local pid host state
    read -r pid host < <(sed -n 's/^pid \([0-9]*\), started [^,]*, on \([^,]*\), in .*/\1 \2/p' "$(lock_file "$1")" 2>/dev/null) || return 1
    [ -n "${pid}" ] && [ "${host}" = "${run_host}" ] || return 1
    state=$(ps -o stat= -p "${pid}" 2>/dev/null || true)
    [ -z "${state}" ] || [[ "${state}" == Z* ]]
}
# claim <output>: hold it for the whole run, or refuse to start.
# flock's exit code: 75 when another process holds the lock (-E), anything else
# is a filesystem that cannot lock (e.g. Lustre mounted with noflock)
lock_error() {
    echo "$0: cannot lock $(lock_file "$1") (flock exit code $2): this filesystem does not support flock" >&2
    exit 3
}
# lock_wait <output> <flock option...>: take the lock on lock_fd (-n: without waiting,
# -w S: waiting up to S seconds, none: as long as it takes); lock_code is 0 (taken)
# or 75 (another process holds it)
lock_wait() {
    local output=$1
    shift
    lock_code=0
    flock "$@" -E 75 "${lock_fd}" || lock_code=$?
    [ "${lock_code}" -eq 0 ] || [ "${lock_code}" -eq 75 ] || lock_error "${output}" "${lock_code}"
}
# try_lock <output>: open its lock and try it without waiting
try_lock() {
    open_lock "$1"
    lock_wait "$1" -n
}
claim() {
    try_lock "$1"
    if [ "${lock_code}" -eq 75 ] && holder_gone "$1"; then
        log "  $1: the run that held it ($(cat "$(lock_file "$1")")) is gone; waiting up to ${lock_grace} s for its last processes to exit"
        lock_wait "$1" -w "${lock_grace}"
    fi
    if [ "${lock_code}" -eq 75 ]; then
        echo "$0: refusing to start: $1 is being written by another run ($(cat "$(lock_file "$1")" 2>/dev/null || echo "holder unknown")); wait for it, or give this run other outputs (--expdir, --tag, --dumpdir, --results)" >&2
        exit 3
    fi
    name_holder "$1"
}
declare -A turn_fd=()
# take_turn <output> / end_turn <output>: write a shared output after any other run that is writing it.
take_turn() {
    try_lock "$1"
    if [ "${lock_code}" -eq 75 ]; then
        log "  waiting for another run, which is writing $1 ($(cat "$(lock_file "$1")" 2>/dev/null))"
        lock_wait "$1"
    fi
    name_holder "$1"
    turn_fd[$1]=${lock_fd}
}
end_turn() {
    local fd=${turn_fd[$1]}
    flock -u "${fd}"
    exec {fd}>&-
    unset "turn_fd[$1]"
}
in_stages() { [ "${stage}" -le "$2" ] && [ "${stop_stage}" -ge "$1" ]; }
for dset in ${all_sets}; do
    if in_stages 1 1; then claim "data/${dset}"; fi
    if in_stages 2 2; then claim "${dumpdir}/raw/${dset}"; fi
done
if in_stages 2 2; then claim "${token_dir}"; fi
if in_stages 6 8; then
    for variant in ${variants}; do claim "$(variant_dir "${variant}")"; done
fi
if in_stages 8 8; then claim "${results}"; fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
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

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    current_stage=2
    log "Stage 2: format audio and build the ${token_type} token list: data -> ${dumpdir}/raw, ${token_dir}"
    for dset in ${all_sets}; do
        out=${dumpdir}/raw/${dset}
        key=$(step_key "fs=${fs}")
        # the dir too: its time stamp changes when stage 1 adds or removes a file
        if fresh "${out}/.done" "${key}" "data/${dset}" data/"${dset}"/*; then
            log "  ${out} is up to date"
            continue
        fi
        ${python} -m espnet_gcft.bin.format_data --data_dir "data/${dset}" --out_dir "${out}" \
            --fs "${fs}" --nj "${nj}"
        touch "${out}/.done"
        write_stamp "${out}/.done" "${key}"
    done
    key=$(step_key "token_type=${token_type}" "nbpe=${nbpe}")
    if fresh "${token_list}" "${key}" "${dumpdir}/raw/${train_set}/text"; then
        log "  ${token_list} is up to date"
    else
        mkdir -p "${token_dir}"
        cut -d' ' -f2- "${dumpdir}/raw/${train_set}/text" > "${token_dir}/train_text"
        if [ "${token_type}" = bpe ]; then
            ${python} -m espnet_gcft.bin.spm_train --input="${token_dir}/train_text" \
                --vocab_size="${nbpe}" --model_type=unigram --model_prefix="${token_dir}/bpe" \
                --character_coverage=1.0 --input_sentence_size=100000000 \
                --user_defined_symbols="$(${python} -c 'from espnet_gcft.scoring.slu import NER_TYPES; print(",".join(NER_TYPES + ("FILL", "SEP")))')"
            bpe_opts=(--bpemodel "${token_dir}/bpe.model")
        else
            bpe_opts=()
        fi
        ${python} -m espnet_gcft.bin.espnet_cli espnet2.bin.tokenize_text --token_type "${token_type}" "${bpe_opts[@]}" \
            --input "${token_dir}/train_text" --output "${token_list}.tmp" --field 1- \
            --write_vocabulary true --add_symbol '<blank>:0' --add_symbol '<unk>:1' \
            --add_symbol '<sos/eos>:-1'
        mv "${token_list}.tmp" "${token_list}"
        write_stamp "${token_list}" "${key}"
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

# generate <log dir> <data dir> <text file> <out dir> <prompt> [<data dir> <text file> <out dir> <prompt> ...]:
# LLM context of every utterance from the previous text(s) in <text file>, for each
# output (4 words each) that is not fresh; all of them in one generate_context run
# (one per shard with --gen_nj), so the LLM is loaded once per run and shard, not
# once per output. A previous text already generated for another output of the run
# or any set's gen_<prompt> is reused, not generated again. Logs: <log dir>/generate[.JOB].log.
generate() {
    local log_dir=$1 data text out prompt key reuse dset i
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
        for reuse in "${dumpdir}"/context/*/"$(gen_source "${prompt}")"; do
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
        uses_audio_context "${variant}" && config=${train_config_dir}/train_${variant}.yaml
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
    local variant base dset src out key
    for variant in ${variants}; do
        base=$(base_source "${variant}")
        [ -n "${base}" ] || continue
        for dset in ${all_sets}; do
            src=${dumpdir}/context/${dset}/${base}
            [ -e "${src}/emb_${pooling}.scp" ] || continue  # no text contexts for a blind set
            out=${src}${rows_suffix}
            key=$(step_key "rows=${num_prev}" "pooling=${pooling}")
            if fresh "${out}/emb_${pooling}.scp" "${key}" "${src}/emb_${pooling}.scp" \
                    "${dumpdir}/raw/${dset}/utt2prev"; then
                log "  ${out}/emb_${pooling}.scp is up to date"
                continue
            fi
            ${python} -m espnet_gcft.bin.stack_context --data_dir "${dumpdir}/raw/${dset}" \
                --rows "${num_prev}" --source_dir "${src}" --scp_name "emb_${pooling}.scp" \
                --out_dir "${out}"
            write_stamp "${out}/emb_${pooling}.scp" "${key}"
        done
    done
}

# condition_source <source> <condition>: the context dir a condition reads.
condition_source() {
    case "$2" in
        gt) echo "$1" ;;
        hyp) [ "$1" = prev_gt ] && echo prev_hyp || echo "$1_hyp" ;;  # prev_gt_n2 -> prev_gt_n2_hyp
        *) echo "$1_$2" ;;
    esac
}
# condition_context <set> <source> <condition> [more inputs...]: the source's
# contexts re-paired or degraded by the condition (context_condition), in
# dump/context/<set>/<source>_<condition>; the inputs beyond the source's scp
# and utt2prev are the condition's own (the homophones for opposite).
condition_context() {
    local dset=$1 source=$2 condition=$3 dir key
    shift 3
    dir=${dumpdir}/context/${dset}/$(condition_source "${source}" "${condition}")
    key=$(step_key "condition=${condition}" "pooling=${pooling}")
    if fresh "${dir}/emb_${pooling}.scp" "${key}" \
            "${dumpdir}/context/${dset}/${source}/emb_${pooling}.scp" "${dumpdir}/raw/${dset}/utt2prev" "$@"; then
        log "  ${dir}/emb_${pooling}.scp is up to date"
        return 0
    fi
    ${python} -m espnet_gcft.bin.context_condition --condition "${condition}" \
        --data_dir "${dumpdir}/raw/${dset}" --source_dir "${dumpdir}/context/${dset}/${source}" \
        --scp_name "emb_${pooling}.scp" --out_dir "${dir}"
    write_stamp "${dir}/emb_${pooling}.scp" "${key}"
}

# degrade_contexts <condition> <source> <sets...>: the condition's copy of a source's contexts.
degrade_contexts() {
    local condition=$1 source=$2 dset
    shift 2
    for dset in "$@"; do
        condition_context "${dset}" "${source}" "${condition}"
    done
}

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
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
        key=$(step_key "num_prev=${text_num_prev}")
        if fresh "${out}/text" "${key}" "${data}/transcript" "${data}/utt2prev"; then
            log "  ${out}/text is up to date"
        else
            ${python} -m espnet_gcft.bin.make_prev_text --data_dir "${data}" --text transcript \
                --num_prev "${text_num_prev}" --out_dir "${out}"
            write_stamp "${out}/text" "${key}"
        fi
        for prompt in ${prompts}; do
            gen_jobs+=("${data}" "${data}/transcript" "${dumpdir}/context/${dset}/$(gen_source "${prompt}")" "${prompt}")
        done
    done
    # every set and prompt that is not up to date in one run: the LLM is loaded once
    generate "${dumpdir}/context/log" "${gen_jobs[@]}"
    end_turn "${dumpdir}/context"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    current_stage=4
    log "Stage 4: embed every context source with ${text_encoder} (${pooling}) and report on it: text -> emb_${pooling}.scp, report.md"
    take_turn "${dumpdir}/context"
    for dset in ${all_sets}; do
        has_references "${dumpdir}/raw/${dset}" || continue
        report_dir=${dumpdir}/context/${dset}
        text_sources="${prev_source} $(for p in ${prompts}; do gen_source "${p}"; done | tr '\n' ' ')"
        # shellcheck disable=SC2046
        embed "${dumpdir}/raw/${dset}" $(for src in ${text_sources}; do echo "${report_dir}/${src}"; done)
        key=$(step_key "encoder=${text_encoder}" "pooling=${pooling}" "sources=${text_sources}")
        # shellcheck disable=SC2046
        if [ "${context_report}" != true ]; then
            :
        elif fresh "${report_dir}/report.json" "${key}" \
                $(for src in ${text_sources}; do echo "${report_dir}/${src}/text"; done); then
            log "  ${report_dir}/report.json is up to date"
        else
            # shellcheck disable=SC2086
            ${python} -m espnet_gcft.bin.context_report --data_dir "${dumpdir}/raw/${dset}" \
                --text transcript --context_dir "${report_dir}" --encoder "${text_encoder}" \
                --pooling "${pooling}" --device "${embed_device}" --out "${report_dir}" \
                --sources ${text_sources}
            write_stamp "${report_dir}/report.json" "${key}"
        fi
    done
    # without a shared pretrained model the audio context comes from the configs' upstream now
    [ -n "${pretrain_config}" ] || audio_contexts
    stack_rows
    end_turn "${dumpdir}/context"
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
bpe_opt=$([ "${token_type}" = bpe ] && echo "--bpemodel ${token_dir}/bpe.model" || true)

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    current_stage=5
    log "Stage 5: ESPnet collect-stats: ${dumpdir}/raw -> ${stats_dir}"
    take_turn "${stats_dir}"
    stats_config=${pretrain_config:-${train_config_dir}/train_${variants%% *}.yaml}
    key=$(step_key "file:${stats_config}" "model_args=${model_args}" "file:${token_list}")
    if fresh "${stats_dir}/.done" "${key}" "${dumpdir}/raw/${train_set}/.done" \
            "${dumpdir}/raw/${valid_set}/.done" "${token_list}"; then
        log "  ${stats_dir} is up to date"
    else
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
        write_stamp "${stats_dir}/.done" "${key}"
    fi
    end_turn "${stats_dir}"
fi

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

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    current_stage=6
    if [ -n "${pretrain_config}" ]; then
        dir=${expdir}/pretrain
        log "Stage 6: shared pretraining (${pretrain_config}, no context) -> ${dir}"
        take_turn "${dir}"
        if fresh "${dir}/.done" "$(train_key "${pretrain_config}" "" "" "")" "${pretrain_config}" \
                "${stats_dir}/.done"; then
            log "  ${dir} is up to date"
        else
            train_model "${dir}" "${pretrain_config}" "$(nproc)" "" "" ""
        fi
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
        source=$(context_source "${variant}")
        config=${train_config_dir}/train_${variant}.yaml
        dir=$(variant_dir "${variant}")
        train_context=""
        valid_context=""
        variant_args=${variant_train_args}
        if [ -n "${source}" ]; then
            if [ -n "${train_degrade}" ]; then
                take_turn "${dumpdir}/context"
                degrade_contexts "${train_degrade}" "${source}" "${train_set}" "${valid_set}"
                end_turn "${dumpdir}/context"
                source=${source}_${train_degrade}
            fi
            train_context=${dumpdir}/context/${train_set}/${source}/emb_${pooling}.scp
            valid_context=${dumpdir}/context/${valid_set}/${source}/emb_${pooling}.scp
        fi
        if uses_audio_context "${variant}"; then
            # the fusion's context_dim is the upstream's hidden size, whatever --ssl is
            variant_args+="${variant_args:+ }--model_conf context_dim=$(${python} -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["dim"])' \
                "${dumpdir}/context/${train_set}/prev_audio/meta.json" "emb_${pooling}")"
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
fi

# decode_dir <variant> <set> <condition>: decode_<set> for gt, decode_<set>_<condition> otherwise.
decode_dir() { echo "$(variant_dir "$1")/decode_$2$([ "$3" = gt ] || echo "_$3")"; }

# condition_applies <variant> <condition> <set>: the variant is decoded in that condition.
# hyp replaces a previous *text* by an ASR hypothesis: not for the audio context,
# and not built for row-stacked contexts; opposite needs the set's homophone items.
condition_applies() {
    needs_context_at_inference "$1" || return 1
    case "$2" in
        hyp) ! uses_audio_context "$1" && [ -z "${rows_suffix}" ] ;;
        opposite) [ -s "${dumpdir}/raw/$3/homophones" ] ;;
        *) return 0 ;;
    esac
}


# decode_and_score <variant> <set> <condition>
decode_and_score() {
    local variant=$1 dset=$2 condition=$3 source out data context_scp="" scored=true
    local context_opt=() homophones_opt=() result key model i
    source=$(context_source "${variant}")
    out=$(decode_dir "${variant}" "${dset}" "${condition}")
    data=${dumpdir}/raw/${dset}
    model=$(variant_dir "${variant}")/${inference_model}
    log "Stage 7: decode and score ${variant} on ${dset} (context: ${condition}) -> ${out}"
    has_references "${data}" || scored=false
    if needs_context_at_inference "${variant}"; then
        context_scp=${dumpdir}/context/${dset}/$(condition_source "${source}" "${condition}")/emb_${pooling}.scp
        context_opt=(--data_path_and_name_and_type "${context_scp},context,kaldi_ark")
    fi
    if [ -s "${data}/homophones" ] && "${scored}"; then
        homophones_opt=(--homophones "${data}/homophones" --reference "${data}/text")
    fi
    result=${out}/score.json
    "${scored}" || result=${out}/hyp.trn
    key=$(step_key "file:${inference_config}" "model=${model}" "file:${model}" \
        "context=${context_scp}" "file:${context_scp}" "task=${task}")
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
        ${python} -m espnet_gcft.bin.gcft_inference --model "$(variant_dir "${variant}")" \
        --model_file "${inference_model}" --config "${inference_config}" \
        --data_path_and_name_and_type "${split_dir}/wav.JOB.scp,speech,sound" \
        "${context_opt[@]}" "${homophones_opt[@]}" \
        --device "$([ "${ngpu}" -gt 0 ] && echo cuda || echo cpu)" \
        --output_dir "${split_dir}/JOB"
    ${python} -m espnet_gcft.bin.make_trn --data_dir "${data}" --out_dir "${out}" \
        $(for ((i = 1; i <= inference_nj; i++)); do echo "${split_dir}/${i}"; done)
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
    log "  $(${python} -c 'import json, sys; d = json.load(open(sys.argv[1])); print(", ".join(f"{k} {v:.2f}" for k, v in sorted(d.items()) if isinstance(v, float)))' "${out}/score.json")"
}

# diagnostics <variant> <set> <condition> <decode dir>: what the context knew (decode_diagnostics).
diagnostics() {
    local variant=$1 dset=$2 condition=$3 out=$4 opts=() source
    source=$(context_source "${variant}")
    local generated=${dumpdir}/context/${dset}/$(condition_source "${source}" "${condition}")/text
    if [ "${variant}" = gcaf ] || [ "${variant}" = audio_gcaf ]; then
        opts=(--student "${out}/student.scp"
              --teacher "${dumpdir}/context/${dset}/${source}/emb_${pooling}.scp")
    elif [ "${variant}" = gen_inject ] && [ "${condition}" != shuffled ] && [ -s "${generated}" ]; then
        # (a row-stacked source has no one text per utterance)
        opts=(--generated "${generated}")
    fi
    [ "${#opts[@]}" -gt 0 ] || return 0
    ${python} -m espnet_gcft.bin.decode_diagnostics --homophones "${dumpdir}/raw/${dset}/homophones" \
        "${opts[@]}" --out "${out}/diagnostics.json"
}

# condition_contexts <set>: the contexts of every condition of the context variants' sources.
condition_contexts() {
    local dset=$1 data=${dumpdir}/raw/$1 condition variant source dir key hyp_text prompt
    local sources=() hyp_sources=()
    for variant in ${variants}; do
        needs_context_at_inference "${variant}" && sources+=("$(context_source "${variant}")")
        condition_applies "${variant}" hyp "${dset}" && hyp_sources+=("$(context_source "${variant}")")
    done
    [ "${#sources[@]}" -gt 0 ] || return 0
    for condition in ${conditions}; do
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
                dir=${dumpdir}/context/${dset}/$(condition_source "${source}" hyp)
                if [ "${source}" = "${prev_source}" ]; then
                    key=$(step_key "num_prev=${text_num_prev}" "hyp=${hyp_text}")
                    if fresh "${dir}/text" "${key}" "${hyp_text}" "${data}/utt2prev"; then
                        log "  ${dir}/text is up to date"
                    else
                        ${python} -m espnet_gcft.bin.make_prev_text --data_dir "${data}" \
                            --text "$(realpath --relative-to="${data}" "${hyp_text}")" \
                            --num_prev "${text_num_prev}" --out_dir "${dir}"
                        write_stamp "${dir}/text" "${key}"
                    fi
                else
                    prompt=${context_prompt}
                    generate "${dir}/log" "${data}" "${hyp_text}" "${dir}" "${prompt}"
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

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    current_stage=7
    # --decode_jobs decodes at a time, the cores shared out among them
    decode_threads=$(( $(nproc) / decode_jobs )); [ "${decode_threads}" -ge 1 ] || decode_threads=1
    for dset in ${test_sets}; do
        data=${dumpdir}/raw/${dset}
        for variant in ${variants}; do
            if needs_text_at_inference "${variant}" && ! has_references "${data}"; then
                log "Stage 7: ${variant} on ${dset} skipped: it needs the previous utterance's text, which blind ${dset} lacks"
                continue
            fi
            OMP_NUM_THREADS=${decode_threads} pool_run "${decode_jobs}" "${variant} on ${dset}" \
                decode_and_score "${variant}" "${dset}" gt
        done
        pool_wait
        has_references "${data}" && [ -n "${conditions}" ] || continue
        # shuffled/opposite re-pair contexts; hyp needs a context-free model's hypotheses
        take_turn "${dumpdir}/context"
        condition_contexts "${dset}"
        end_turn "${dumpdir}/context"
        for variant in ${variants}; do
            for condition in ${conditions}; do
                condition_applies "${variant}" "${condition}" "${dset}" || continue
                OMP_NUM_THREADS=${decode_threads} pool_run "${decode_jobs}" \
                    "${variant} on ${dset} (${condition})" decode_and_score "${variant}" "${dset}" "${condition}"
            done
        done
        pool_wait
    done
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    current_stage=8
    log "Stage 8: ${results}, ${results%.md}.json, ${results%.md}.png and packed models: ${expdir} -> ${results}"
    scored_sets=$(for dset in ${test_sets}; do
        if has_references "${dumpdir}/raw/${dset}"; then echo "${dset}"; fi; done | tr '\n' ' ')
    if [ -n "${scored_sets// /}" ]; then
        # shellcheck disable=SC2086
        ${python} -m espnet_gcft.bin.make_results --exp_dir "${expdir}" \
            --variants $(for variant in ${variants}; do basename "$(variant_dir "${variant}")"; done) ${results_extra} \
            --test_sets ${scored_sets} --conditions gt ${conditions} --task "${task}" \
            --context_dir "${dumpdir}/context" --context_prompt "${context_prompt}" \
            --pooling "${pooling}" --num_prev "${num_prev}" --prev_mode "${prev_mode}" --seed "${seed}" \
            --model_file "${inference_model}" --command "${command_line}" \
            ${results_records:+--extra_records ${results_records}} \
            --out "${results}" --json "${results%.md}.json" --plot "${results%.md}.png"
    else
        log "  no test set has references: no RESULTS.md"
    fi
    for variant in ${variants}; do
        packed=$(variant_dir "${variant}")/packed.zip
        model=$(variant_dir "${variant}")/${inference_model}
        key=$(step_key "file:${model}")
        if fresh "${packed}" "${key}" "${model}"; then
            continue
        fi
        ${python} -m espnet_gcft.bin.espnet_cli espnet2.bin.pack asr --asr_train_config "$(variant_dir "${variant}")/config.yaml" \
            --asr_model_file "${model}" --outpath "${packed}" > "$(variant_dir "${variant}")/pack.log"
        write_stamp "${packed}" "${key}"
    done
fi

log "Successfully finished in ${SECONDS} s"
