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
# combination; espnet_gcft/recipe/sweep.py SWEEP_KEYS), each key and value checked
# against the spec of the gcft.sh option it sets before the first point starts:
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
variants=""              # [variants] variants trained at every point (e.g. gcaf)
grid=""                  # [text or empty] key=values (repeat --grid for a product; see the header)
reference=""             # [text or empty] existing exp dirs as points: "<dir>:key=value[,key=value]" (repeat)
name=sweep               # [name] the sweep's name: results in RESULTS_<name>.{md,json,png}, points in <sweep_dir>/
sweep_dir=""             # [path or empty] where each point's RESULTS goes (default: <expdir>/<name>)
expdir=exp               # [path] the recipe's exp dir (as given to run.sh)
runner=./run.sh          # [command] the recipe's run script
results=""               # [md path or empty] default: RESULTS_<name>.md (.json and .png beside it)
jobs=1                   # [int >= 1] points run side by side (their output lines prefixed with [<point>])
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
if [ $# -ne 0 ]; then
    echo "${help_message}" >&2
    exit 2
fi
[ -n "${grid}" ] && grids+=("${grid}")
[ -n "${reference}" ] && references+=("${reference}")
sweep_dir=${sweep_dir:-${expdir}/${name}}
results=${results:-RESULTS_${name}.md}
# every point (the product of the grids), each key and value checked before the first starts:
# lines of "<tag><TAB><key=value,...><TAB><run.sh options>"
grid_args=()
for entry in "${grids[@]+"${grids[@]}"}"; do grid_args+=(--grid "${entry}"); done
plan_text=$(python3 -m espnet_gcft.bin.sweep_plan --gcft ./gcft.sh --variants "${variants}" \
    "${grid_args[@]+"${grid_args[@]}"}") || exit 2
mapfile -t plan <<< "${plan_text}"
for ref in "${references[@]+"${references[@]}"}"; do
    [[ "${ref}" == *:*=* ]] || { echo "$0: --reference wants <exp dir>:key=value[,key=value], got ${ref}" >&2; exit 2; }
done
# shellcheck source=scripts/lib/jobs.sh
. scripts/lib/jobs.sh
trap_interrupts

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
# (with --jobs N) its output lines prefixed with [<tag>]
prefixed_point() {
    local tag=$1
    set -o pipefail
    run_point "$@" 2>&1 | sed -u "s/^/[${tag}] /"
}
point_done() {
    if [ "$2" -ne 0 ]; then log "Sweep point $1 failed (exit code $2)"; else log "Sweep point $1 finished"; fi
}
pool_done_hook=point_done
for line in "${plan[@]}"; do
    IFS=$'\t' read -r tag settings options <<< "${line}"
    eval "opts=(${options})"
    mkdir -p "${sweep_dir}/${tag}"
    points+=(--point "${tag}" "${settings}")
    log "Sweep point ${tag} (${settings//,/ }): ${runner} ... --tag ${tag}$([ "${jobs}" -eq 1 ] || echo " (output lines: [${tag}])")"
    if [ "${jobs}" -eq 1 ]; then
        run_point "${tag}" "${opts[@]+"${opts[@]}"}"
    else
        pool_run "${jobs}" "${tag}" prefixed_point "${tag}" "${opts[@]+"${opts[@]}"}"
    fi
done
if ! pool_drain; then
    echo "$0: sweep ${name}: point(s) ${pool_failed[*]} failed; their output is above, prefixed [<point>]; the same command redoes only what is not up to date" >&2
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
