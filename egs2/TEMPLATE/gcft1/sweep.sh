#!/usr/bin/env bash
# One command for a sweep: every point of a grid of settings trained, decoded and
# scored in its own tagged exp dir, then RESULTS_sweep.{md,json,png}.
#
#   ./sweep.sh --variants gcaf --grid "distill_weight=0.1 1.0"
#   ./sweep.sh --variants inject_gt --grid "prev_mode=join rows" --grid "num_prev=2 3" \
#       --reference "inject_gt:prev_mode=join,num_prev=1" -- --test_sets "test test_far"
#   ./sweep.sh --variants "gen_inject gcaf" --grid "llm=smollm2-135m-instruct /models/qwen7b"
#
# Each point runs the recipe's ./run.sh (its corpus settings) with the point's
# options, --tag <point> (variants train into <expdir>/<variant>_<point>) and
# stages 3-8: formatted data, collect-stats and a shared pretrained model are
# made once (the first point, or an earlier ./run.sh) and every later point
# finds them up to date; a context source a point shares with another (the
# same num_prev, prompt, LLM, pooling) is made once too, and one that differs
# goes to its own dir (dump/context/<set>/<source>_n<N>, _rows<N>,
# gen_<prompt>_<llm tag>; the default layout is kept for a run that is not a
# sweep). Options after "--" go to every point (e.g. --test_sets, --conditions).
#
# --jobs N runs N points at a time. Each point is its own run.sh with its own exp
# dirs and RESULTS; the steps they share are taken in turn (gcft.sh's locks), so
# the second point waits while the first makes a shared context and then finds
# it up to date. On a CPU a point's variant trains with nproc/--train_jobs
# threads, the same as when points run one by one, so the results do not depend
# on --jobs; a sweep of single-variant points leaves cores idle without it.
#
# Swept settings (key=values, values separated by spaces; several --grid: every
# combination):
#   distill_weight  gcaf's alpha (--model_conf distill_weight=V)
#   attention_dim   the fusion's attention size (--context_fusion_conf attention_dim=V)
#   pooling         cls | mean | sequence (--pooling)
#   num_prev        previous utterances in the context (--num_prev)
#   prev_mode       join | rows (--prev_mode)
#   context_prompt  the prompt of gen_inject/gcaf (--prompts V --context_prompt V)
#   llm             the LLM (--llm V; its outputs go to gen_<prompt>_llm<i>)
#   train_degrade   replaced<p> | dropped<p> (--train_degrade)
#   seed            the training seed (--seed)
# --reference "<exp dir name>:key=value[,key=value]" adds an existing, untagged
# model as a point (e.g. the recipe's own inject_gt as num_prev=1), so the
# setting every run already has is not trained again.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# <options>
variants=""              # variants trained at every point (e.g. gcaf)
grid=""                  # key=values (repeat --grid for a product; see the header)
reference=""             # existing exp dirs as points: "<dir>:key=value[,key=value]" (repeat)
name=sweep               # the sweep's name: results in RESULTS_<name>.{md,json,png}, points in <sweep_dir>/
sweep_dir=""             # where each point's RESULTS goes (default: <expdir>/<name>)
expdir=exp               # the recipe's exp dir (as given to run.sh)
runner=./run.sh          # the recipe's run script
results=""               # default: RESULTS_<name>.md (.json and .png beside it)
jobs=1                   # points run side by side (their output lines prefixed with [<point>])
# </options>

command_line="$0 $*"
help_message="Usage: $0 --variants <variants> --grid key=\"v1 v2\" [--grid ...] [--reference dir:key=value] [--jobs N] [-- run.sh options]"
grids=()
references=()
point_args=()
# --grid and --reference may repeat: collect them before the usual option parsing
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --grid) grids+=("$2"); shift 2 ;;
        --reference) references+=("$2"); shift 2 ;;
        --) shift; point_args=("$@"); break ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ] || [ -z "${variants}" ] || [ "${#grids[@]}" -eq 0 ] || ! [[ "${jobs}" =~ ^[1-9][0-9]*$ ]]; then
    echo "${help_message}" >&2
    exit 2
fi
[ -n "${grid}" ] && grids+=("${grid}")
[ -n "${reference}" ] && references+=("${reference}")
sweep_dir=${sweep_dir:-${expdir}/${name}}
results=${results:-RESULTS_${name}.md}

# point_options <key> <value> <index>: the run.sh options of one setting ("train:" words
# are ESPnet training options, gathered into one --train_args)
point_options() {
    case "$1" in
        distill_weight) echo "train:--model_conf=distill_weight=$2" ;;
        attention_dim) echo "train:--context_fusion_conf=attention_dim=$2" ;;
        pooling|num_prev|prev_mode|train_degrade|seed) echo "--$1 $2" ;;
        context_prompt) echo "--prompts $2 --context_prompt $2" ;;
        llm) echo "--llm $2 --context_tag llm$3" ;;
        *) echo "$0: cannot sweep $1 (distill_weight attention_dim pooling num_prev prev_mode" \
               "context_prompt llm train_degrade seed)" >&2; return 2 ;;
    esac
}
# point_tag <key> <value> <index>: a short name for a setting (part of the exp dir names)
point_tag() {
    case "$1" in
        distill_weight) echo "dw$2" ;;
        attention_dim) echo "att$2" ;;
        pooling) echo "$2" ;;
        num_prev) echo "n$2" ;;
        prev_mode) echo "$2" ;;
        context_prompt) echo "$2" ;;
        llm) echo "llm$3" ;;
        train_degrade) echo "train_$2" ;;
        seed) echo "seed$2" ;;
    esac
}

# every combination of the grids: lines of "key=value<TAB>key=value..." with value indices
combos=("")
for entry in "${grids[@]}"; do
    key=${entry%%=*}
    values=${entry#*=}
    [ "${key}" != "${entry}" ] && [ -n "${values// /}" ] || { echo "$0: --grid wants key=\"values\", got ${entry}" >&2; exit 2; }
    point_options "${key}" x 0 > /dev/null || exit 2
    next=()
    for combo in "${combos[@]}"; do
        index=0
        for value in ${values}; do
            index=$((index + 1))
            next+=("${combo:+${combo}	}${key}=${value}=${index}")
        done
    done
    combos=("${next[@]}")
done

# variants that use no generated context need no LLM run at a point
needs_llm=false
for variant in ${variants}; do
    case "${variant}" in gen_inject|gcaf) needs_llm=true ;; esac
done

mkdir -p "${sweep_dir}"
points=()
# run_point <tag> <run.sh options...>: one point's stages 3-8
run_point() {
    local tag=$1
    shift
    "${runner}" --stage 3 --stop_stage 8 --variants "${variants}" --conditions "" \
        --context_report false "$@" --tag "${tag}" \
        --results "${sweep_dir}/${tag}/RESULTS.md" "${point_args[@]+"${point_args[@]}"}"
}
declare -A running=()  # pid of a point's subshell -> its tag
failed=()
wait_point() {
    local pid status=0
    wait -n -p pid || status=$?
    if [ "${status}" -ne 0 ]; then
        failed+=("${running[${pid}]}")
        log "Sweep point ${running[${pid}]} failed (exit code ${status})"
    else
        log "Sweep point ${running[${pid}]} finished"
    fi
    unset "running[${pid}]"
}
for combo in "${combos[@]}"; do
    options=()
    train_args=""
    tags=()
    settings=()
    IFS=$'\t' read -r -a parts <<< "${combo}"
    for part in "${parts[@]}"; do
        key=${part%%=*}; rest=${part#*=}; value=${rest%=*}; index=${rest##*=}
        read -r -a opts <<< "$(point_options "${key}" "${value}" "${index}")"
        if [[ "${opts[0]}" == train:* ]]; then
            train_args+="${train_args:+ }${opts[0]#train:}"
        else
            options+=("${opts[@]}")
        fi
        tags+=("$(point_tag "${key}" "${value}" "${index}")")
        settings+=("${key}=${value}")
    done
    tag=$(IFS=_; echo "${tags[*]}")
    extra=()
    "${needs_llm}" || extra=(--prompts "")
    # the variants' training only: the shared pretraining stays the recipe's
    [ -n "${train_args}" ] && options+=(--variant_train_args "${train_args}")
    mkdir -p "${sweep_dir}/${tag}"
    points+=(--point "${tag}" "$(IFS=,; echo "${settings[*]}")")
    while [ "${#running[@]}" -ge "${jobs}" ]; do wait_point; done  # (none run with --jobs 1)
    log "Sweep point ${tag} (${settings[*]}): ${runner} ... --tag ${tag}$([ "${jobs}" -eq 1 ] || echo " (output lines: [${tag}])")"
    if [ "${jobs}" -eq 1 ]; then
        run_point "${tag}" "${extra[@]+"${extra[@]}"}" "${options[@]+"${options[@]}"}"
        continue
    fi
    (
        set -o pipefail
        run_point "${tag}" "${extra[@]+"${extra[@]}"}" "${options[@]+"${options[@]}"}" 2>&1 \
            | sed -u "s/^/[${tag}] /"
    ) &
    running[$!]=${tag}
done
while [ "${#running[@]}" -gt 0 ]; do wait_point; done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "$0: sweep ${name}: point(s) ${failed[*]} failed; their output is above, prefixed [<point>]; the same command redoes only what is not up to date" >&2
    exit 1
fi
for ref in "${references[@]+"${references[@]}"}"; do
    points+=(--reference "${ref%%:*}" "${ref#*:}")
done
# shellcheck disable=SC2086
python3 -m espnet_gcft.bin.make_sweep_results --exp_dir "${expdir}" --sweep_dir "${sweep_dir}" \
    --variants ${variants} "${points[@]}" --out "${results}" --json "${results%.md}.json" \
    --plot "${results%.md}.png" --command "${command_line}"
log "Sweep ${name}: ${results}, ${results%.md}.json, ${results%.md}.png"
