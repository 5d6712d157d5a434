# Corpus root: the unpacked SLUE-VoxPopuli release (slue-voxpopuli_*.tsv, fine-tune/,
# dev/, test/). local/data.sh --corpus_dir DIR overrides it.
SLUE_VOXPOPULI=${SLUE_VOXPOPULI:-downloads/slue-voxpopuli}
