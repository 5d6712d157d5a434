#!/usr/bin/env bash
# Create a new corpus recipe directory linked to this template, as ESPnet's
# egs2/TEMPLATE/asr1/setup.sh does.
#
#   egs2/TEMPLATE/gcft1/setup.sh egs2/<corpus>/gcft1
#
# The new directory gets links to the template's gcft.sh, cmd.sh, path.sh,
# utils/ and scripts/, a conf/ linking the shared Base-SSL configs (training,
# decoding, Slurm) and the tiny CPU smoke-test configs, and three files to fill
# in: db.sh (where the corpus lies), local/data.sh (stage 1: Kaldi data dirs with
# utt2prev) and run.sh (the task and sets). See README.md, "Your own corpus".
set -euo pipefail

if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 egs2/<corpus>/gcft1" >&2
    exit 2
fi
target=$1
template=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -e "${target}" ]; then
    echo "$0: ${target} exists; choose a new directory" >&2
    exit 1
fi
mkdir -p "${target}"
target=$(cd "${target}" && pwd)
# The links are relative (../../TEMPLATE/gcft1/...), as in every recipe here: the
# recipe must sit two levels below egs2/, next to TEMPLATE.
if [ "$(cd "${target}/../.." && pwd)" != "$(cd "${template}/../.." && pwd)" ]; then
    rmdir "${target}"
    echo "$0: a recipe goes to egs2/<corpus>/gcft1 (next to egs2/TEMPLATE), not $1" >&2
    exit 1
fi

cd "${target}"
for name in gcft.sh sweep.sh cmd.sh path.sh utils scripts; do
    ln -s "../../TEMPLATE/gcft1/${name}" "${name}"
done
mkdir -p conf local
# shellcheck source=path.sh
. "${template}/path.sh"  # the venv: the variants come from the registry
for variant in $(python3 -m espnet_gcft.bin.variants --names); do
    ln -s "../../../TEMPLATE/gcft1/conf/ssl_base/train_${variant}.yaml" "conf/train_${variant}.yaml"
done
ln -s ../../../TEMPLATE/gcft1/conf/ssl_base/decode.yaml conf/decode.yaml
ln -s ../../../TEMPLATE/gcft1/conf/slurm_gpu.conf conf/slurm.conf
ln -s ../../../TEMPLATE/gcft1/conf/tiny conf/tiny

corpus=$(basename "$(dirname "${target}")")
cat > db.sh <<DB
# Where the ${corpus} release lies; local/data.sh --corpus_dir DIR overrides it.
CORPUS_DIR=\${CORPUS_DIR:-downloads/${corpus}}
DB

cat > local/data.sh <<'DATA'
#!/usr/bin/env bash
# Stage 1: data/<set>/{wav.scp,text,utt2spk,spk2utt} for every set, then utt2prev
# (each utterance's previous one in its session). Fill in the part that reads the
# corpus; the rest is what every recipe does.
#   local/data.sh [--corpus_dir DIR]
set -euo pipefail
. ./path.sh
. ./db.sh

# <options>
corpus_dir=${CORPUS_DIR}  # [path] the release root (db.sh)
task=asr                 # [asr|ner|sentiment] what data/<set>/text holds
# </options>
. utils/parse_options.sh

# 1. Write Kaldi data dirs from ${corpus_dir}: data/<set>/wav.scp ("<utt> <path>",
#    or segments + wav.scp for long recordings), text ("<utt> <target>"),
#    utt2spk, and transcript ("<utt> <plain words>") when text carries NER tags
#    or a sentiment label. Utterance ids must sort in session order, or give
#    make_utt2prev an utt2session file (--order file).
# (check that ${corpus_dir} holds the corpus before this line: gcft.sh runs this script with
# GCFT_CHECK_ONLY=1 before its first stage, to stop a run whose corpus is missing at once)
[ -z "${GCFT_CHECK_ONLY:-}" ] || exit 0
echo "$0: fill in how data/<set> is made from ${corpus_dir} (see the other recipes' local/data.sh)" >&2
exit 1

# 2. The previous utterance of each one (see python -m espnet_gcft.bin.make_utt2prev --help).
for dset in train dev test; do  # your set names
    python3 -m espnet_gcft.bin.make_utt2prev --data_dir "data/${dset}" --order librispeech
done
DATA
chmod +x local/data.sh

cat > run.sh <<'RUN'
#!/usr/bin/env bash
# <corpus>: the four GCFT variants.
#   ./run.sh                               # wav2vec 2.0 Base: exp/wav2vec2, RESULTS_wav2vec2.md
#   ./run.sh --ssl hubert                  # HuBERT Base
#   ./run.sh $(cat conf/tiny/args) --stop_stage 7   # CPU smoke test, tiny model
# The settings all corpus recipes share are in scripts/run_ssl_base.sh; any
# gcft.sh option may follow (./gcft.sh --help).
set -euo pipefail

scripts/run_ssl_base.sh \
    --task asr \
    --train_set train \
    --valid_set dev \
    --test_sets "test" \
    "$@"
RUN
chmod +x run.sh
echo "created ${target}: fill in db.sh, local/data.sh and run.sh (task and sets)"
