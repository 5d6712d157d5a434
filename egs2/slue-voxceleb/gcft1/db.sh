# Corpus root: the unpacked SLUE-VoxCeleb release (slue-voxceleb_*.tsv, fine-tune_raw/,
# dev_raw/, test_raw/). local/data.sh --corpus_dir DIR overrides it.
SLUE_VOXCELEB=${SLUE_VOXCELEB:-downloads/slue-voxceleb}
