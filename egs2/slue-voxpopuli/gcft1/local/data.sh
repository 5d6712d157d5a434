#!/usr/bin/env bash
# Stage 1 of the SLUE-VoxPopuli recipe: data/{train,devel,test} with utt2prev.
#   local/data.sh [--corpus_dir DIR] [--task ner|asr] [--download true]
# train = slue-voxpopuli_fine-tune.tsv, devel = _dev.tsv, test = _test_blind.tsv
# (no references: decoded, not scored). text holds the NER target (--task ner) or
# the transcript (--task asr); transcript always holds the plain lowercased words.
set -euo pipefail
. ./path.sh
. ./db.sh

# <options>
corpus_dir=${SLUE_VOXPOPULI}  # [path] the release root (db.sh: SLUE_VOXPOPULI)
task=ner                 # [ner|asr] ner: entity-tagged targets | asr: transcripts
download=false           # [true|false] true: download and unpack the release into --corpus_dir when it is missing
slue_url=https://public-dataset-model-store.awsdev.asapp.com/users/sshon/public/slue  # [path] where the SLUE zips are (or a mirror)
nj=4                     # [int >= 1] threads reading audio headers
# </options>
. utils/parse_options.sh

missing=$(python3 -c 'import sys; from pathlib import Path; from espnet_gcft.recipe.corpora.slue import missing_release; print(missing_release(Path(sys.argv[1]), "voxpopuli") or "")' "${corpus_dir}")
if [ -n "${missing}" ]; then
    if [ "${download}" = true ]; then
        # (gcft.sh checks the options before its first stage: no download then)
        [ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0
        scripts/download_corpus.sh --strip 1 "${slue_url}/slue-voxpopuli_v0.2_blind.zip" "${corpus_dir}"
    else
        cat >&2 <<MSG
$0: the SLUE-VoxPopuli release is not in ${corpus_dir} (${missing} is missing).
Get it from the SLUE project
(https://github.com/asappresearch/slue-toolkit, scripts/download_datasets.sh):
    ${slue_url}/slue-voxpopuli_v0.2_blind.zip
and unpack it so that ${corpus_dir} holds slue-voxpopuli_fine-tune.tsv, fine-tune/ ...,
or rerun with --download true, or point --corpus_dir (db.sh: SLUE_VOXPOPULI) at it.
MSG
        exit 1
    fi
fi
[ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0  # gcft.sh's check before its first stage ends here
python3 -m espnet_gcft.bin.prepare_corpus --corpus slue-voxpopuli --corpus_dir "${corpus_dir}" \
    --out_dir data --task "${task}" --nj "${nj}"
