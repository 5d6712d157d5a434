#!/usr/bin/env bash
# The paper's experiment matrix on the demo corpus (make demo-matrix), after ./run.sh:
# it reuses the demo's data, contexts, collect-stats, pretrained model and the four
# variants, and adds
#   1. audio_inject and audio_gcaf (the previous utterance's audio as context),
#   2. the far-cue test set test_far (items decided 2 or 3 utterances back),
#   3. degraded context: a fraction p of the contexts replaced or dropped at decoding,
#   4. sweeps: gcaf's distillation weight; inject_gt with N = 1, 2, 3 previous
#      utterances, joined into one text or one context row each (two points at a
#      time: each trains one variant on one core, as the demo's variants do),
#   5. NER: the four variants with --task ner on the sets with the entity-type
#      sessions (train_ner, dev_ner, test_ner; exp_ner, RESULTS_ner.*), fine-tuned
#      from the demo's pretrained model (run.sh --task ner: --init_model exp/pretrain/...),
# and rewrites RESULTS.{md,json,png} with every record (the NER run's included),
# RESULTS_sweep.{md,json,png}.
#   ./run_matrix.sh                 # all of it
#   ./run_matrix.sh --step 3        # from step 3 (each step skips what is up to date anyway)
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"
}

# <options>
step=1                   # [int 1-6] first step to run
# </options>
help_message="Usage: $0 [--step N]"
. ./path.sh
. utils/parse_options.sh
SECONDS=0

variants="baseline inject_gt gen_inject gcaf audio_inject audio_gcaf"
degraded="replaced0.25 replaced0.5 replaced1 dropped0.25 dropped0.5 dropped1"
conditions="shuffled opposite hyp self ${degraded}"
# the inject_gt points of the N sweep (exp dirs inject_gt_<tag>) and gcaf's alpha points
n_points="join_n2 join_n3 rows_n2 rows_n3"
# the demo's gcaf (conf/train_gcaf.yaml) is the reference point of alpha 0.1 0.3 1.0
alpha=$(python3 -m espnet_gcft.bin.recipe_info config_value conf/train_gcaf.yaml model_conf.distill_weight)
alpha_grid=$(for a in 0.1 0.3 1.0; do [ "${a}" = "${alpha}" ] || printf '%s ' "${a}"; done)
alpha_points=$(for a in ${alpha_grid}; do printf 'dw%s ' "${a}"; done)

if [ "${step}" -le 1 ]; then
    log "Step 1: audio variants, degraded and other conditions on test"
    ./run.sh --stage 1 --stop_stage 7 --variants "${variants}" --conditions "${conditions}"
fi
if [ "${step}" -le 2 ]; then
    log "Step 2: every variant on test_far (cues 2 and 3 utterances back)"
    ./run.sh --stage 2 --stop_stage 7 --test_sets test_far --variants "${variants}" --conditions ""
fi
if [ "${step}" -le 3 ]; then
    log "Step 3: inject_gt with N = 2, 3 previous utterances, joined or one row each (N = 1: the demo's inject_gt)"
    ./sweep.sh --name sweep_n --jobs 2 --variants inject_gt --grid "prev_mode=join rows" --grid "num_prev=2 3" \
        --sweep_dir exp/sweep --results exp/sweep/RESULTS_n.md --reference "inject_gt:prev_mode=join,num_prev=1" \
        -- --test_sets "test test_far"
fi
if [ "${step}" -le 4 ]; then
    log "Step 4: gcaf's distillation weight alpha (${alpha}: the demo's gcaf)"
    ./sweep.sh --name sweep_alpha --jobs 2 --variants gcaf --grid "distill_weight=${alpha_grid% }" \
        --sweep_dir exp/sweep --results exp/sweep/RESULTS_alpha.md --reference "gcaf:distill_weight=${alpha}" -- --test_sets test
    log "Step 4: the break control: gcaf trained on shuffled teachers (every training context another session's)"
    ./run.sh --stage 6 --stop_stage 7 --variants gcaf --tag teacher_shuffled --train_degrade replaced1 \
        --conditions "" --test_sets test
fi
if [ "${step}" -le 5 ]; then
    log "Step 5: NER, the four variants on the entity-type sets (exp_ner, RESULTS_ner.*)"
    ./run.sh --task ner --conditions "shuffled opposite"
fi
if [ "${step}" -le 6 ]; then
    log "Step 6: RESULTS.{md,json,png} with every variant, condition, N point and the NER run; RESULTS_sweep.{md,json,png}"
    # shellcheck disable=SC2046
    ./run.sh --stage 8 --stop_stage 8 --test_sets "test test_far" --variants "${variants}" \
        --conditions "${conditions}" --results_extra "$(for t in ${n_points}; do printf 'inject_gt_%s ' "${t}"; done)gcaf_teacher_shuffled" \
        --results_records "$([ -s RESULTS_ner.json ] && echo RESULTS_ner.json || log "  no RESULTS_ner.json (step 5 not run): RESULTS without NER records" >&2)"
    # shellcheck disable=SC2046
    python3 -m espnet_gcft.bin.make_sweep_results --exp_dir exp --sweep_dir exp/sweep \
        --variants inject_gt gcaf \
        $(for t in ${n_points}; do
            mode=${t%_n*}; echo --point "${t}" "prev_mode=${mode},num_prev=${t#*_n}"; done) \
        --reference inject_gt prev_mode=join,num_prev=1 \
        $(for t in ${alpha_points}; do echo --point "${t}" "distill_weight=${t#dw}"; done) \
        --reference gcaf "distill_weight=${alpha}" \
        --command "$0 $*" --out RESULTS_sweep.md --json RESULTS_sweep.json --plot RESULTS_sweep.png
fi
log "Successfully finished in ${SECONDS} s"
