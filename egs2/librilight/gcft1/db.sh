# Corpus root holding librispeech_finetuning/ (Libri-light limited supervision) and
# LibriSpeech/{dev-clean,dev-other,test-clean,test-other}. local/data.sh --corpus_dir DIR
# overrides it.
LIBRILIGHT=${LIBRILIGHT:-downloads/librilight}
