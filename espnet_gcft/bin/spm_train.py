"""Train a sentencepiece model, the recipes' ``--token_type bpe`` token list (stage 2).

Usage::

    python -m espnet_gcft.bin.spm_train --input=train_text --vocab_size=100 \\
        --model_type=unigram --model_prefix=data/token_list/bpe100/bpe [--user_defined_symbols=A,B]

Every ``--key=value`` goes to ``sentencepiece.SentencePieceTrainer.train`` as it
is (ESPnet's own recipes call sentencepiece's ``spm_train`` binary with the same
flags; the pip release of ESPnet ships no ``espnet2.bin.spm_train``, and the
sentencepiece wheel no binary). Writes ``<model_prefix>.model`` and ``.vocab``.
"""

import sys

from espnet_gcft.bin.common import reported_errors
from espnet_gcft.errors import InputError


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    options = {}
    with reported_errors("spm_train"):
        for arg in argv:
            key, sep, value = arg.partition("=")
            if not key.startswith("--") or not sep:
                raise InputError(f"spm_train takes --key=value options, got {arg!r}")
            options[key[2:]] = value
        import sentencepiece as spm

        try:
            spm.SentencePieceTrainer.train(**options)
        except (RuntimeError, OSError) as error:  # bad flags or input: sentencepiece's own message
            raise InputError(f"sentencepiece training failed: {error}") from None


if __name__ == "__main__":
    main()
