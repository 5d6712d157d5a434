#!/usr/bin/env bash
# Stage 1 of the SLUE recipes (slue-voxpopuli, slue-voxceleb: their local/data.sh links
# here): data/{train,devel,test} with utt2prev (and segments for VoxCeleb).
#   local/data.sh [--corpus_dir DIR] [--task ner|sentiment|asr] [--download true]
# train = slue-<corpus>_fine-tune.tsv, devel = _dev.tsv, test = _test_blind.tsv
# (no references: decoded, not scored). text holds the corpus's own target: the NER
# target of VoxPopuli (TYPE FILL ... SEP), the sentiment label then the transcript of
# VoxCeleb; or with --task asr the transcript. transcript always holds the plain
# lowercased words. VoxCeleb rows labelled <mixed> (or Disagreement) are left out of
# train and devel, as SLUE does. The corpus is the recipe's: egs2/<corpus>/gcft1.
set -euo pipefail
. ./path.sh
. ./db.sh

corpus=$(basename "$(dirname "${PWD}")")
case "${corpus}" in
    slue-voxpopuli) name=SLUE-VoxPopuli own_task=ner holds="fine-tune/" ;;
    slue-voxceleb) name=SLUE-VoxCeleb own_task=sentiment holds="fine-tune_raw/" ;;
    *) echo "$0: a SLUE recipe sits in egs2/slue-voxpopuli/gcft1 or egs2/slue-voxceleb/gcft1, not in ${PWD}" >&2
       exit 2 ;;
esac
db_var=$(echo "${corpus//-/_}" | tr '[:lower:]' '[:upper:]')  # SLUE_VOXPOPULI, SLUE_VOXCELEB

# <options>
corpus_dir=${!db_var}    # [path] the release root (db.sh: SLUE_VOXPOPULI or SLUE_VOXCELEB)
task=${own_task}         # [ner|sentiment|asr] the target text: the corpus's own task (VoxPopuli ner, VoxCeleb sentiment) or asr (transcripts)
download=false           # [true|false] true: download and unpack the release into --corpus_dir when it is missing
slue_url=https://public-dataset-model-store.awsdev.asapp.com/users/sshon/public/slue  # [path] where the SLUE zips are (or a mirror)
nj=4                     # [int >= 1] threads reading audio headers
# </options>
. utils/parse_options.sh
if [ "${task}" != asr ] && [ "${task}" != "${own_task}" ]; then
    echo "$0: --task ${task}: ${name} has ${own_task} or asr targets" >&2
    exit 2
fi

missing=$(python3 -m espnet_gcft.bin.prepare_corpus --corpus "${corpus}" --corpus_dir "${corpus_dir}" --missing)
if [ -n "${missing}" ] && [ "${download}" != true ]; then
    cat >&2 <<MSG
$0: the ${name} release is not in ${corpus_dir} (${missing} is missing).
Get it from the SLUE project
(https://github.com/asappresearch/slue-toolkit, scripts/download_datasets.sh):
    ${slue_url}/${corpus}_v0.2_blind.zip
and unpack it so that ${corpus_dir} holds ${corpus}_fine-tune.tsv, ${holds} ...,
or rerun with --download true, or point --corpus_dir (db.sh: ${db_var}) at it.
MSG
    exit 1
fi
[ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0  # gcft.sh's check before its first stage ends here
if [ -n "${missing}" ]; then
    scripts/download_corpus.sh --strip 1 "${slue_url}/${corpus}_v0.2_blind.zip" "${corpus_dir}"
fi
python3 -m espnet_gcft.bin.prepare_corpus --corpus "${corpus}" --corpus_dir "${corpus_dir}" \
    --out_dir data --task "${task}" --nj "${nj}"
