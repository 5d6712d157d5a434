"""Train a GCFT model (any variant) with ESPnet's trainer.

Usage (a recipe's stage 6 calls it this way)::

    python -m espnet_gcft.bin.gcft_train \\
        --config conf/train_gcaf.yaml \\
        --token_list data/token_list/bpe30/tokens.txt \\
        --train_data_path_and_name_and_type dump/raw/train/wav.scp,speech,sound \\
        --train_data_path_and_name_and_type dump/raw/train/text,text,text \\
        --train_data_path_and_name_and_type dump/context/train/gen_title/emb_mean.scp,context,kaldi_ark \\
        --valid_data_path_and_name_and_type ... \\
        --train_shape_file exp/stats/train/speech_shape \\
        --valid_shape_file exp/stats/valid/speech_shape \\
        --output_dir exp/gcaf

It is ESPnet's ``asr_train`` with the GCFT task: ``--model gcft`` and its
``--model_conf context_mode=none|inject|distill``, ``--context_fusion`` and
``--context_student`` with their ``_conf``; resume, checkpoint averaging and DDP
are ESPnet's own.
"""

from espnet_gcft.asr.compat import defer_unused_imports

defer_unused_imports()  # a CLI: before ESPnet is imported (see defer_import)

from espnet_gcft.asr.task import GCFTTask  # noqa: E402


def get_parser():
    """The full argument parser (for documentation tools)."""
    return GCFTTask.get_parser()


def main(cmd=None):
    """Run training; ``cmd`` is the argument list (default: ``sys.argv``)."""
    GCFTTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
