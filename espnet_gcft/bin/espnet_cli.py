"""Run one of ESPnet's own command-line modules the way the GCFT CLIs start.

Usage (the recipes' stage 2 and 8 call it so)::

    python -m espnet_gcft.bin.espnet_cli espnet2.bin.tokenize_text --token_type char ...
    python -m espnet_gcft.bin.espnet_cli espnet2.bin.pack asr --asr_train_config ...

The module runs as ``__main__`` with the remaining arguments, after the
dependencies no GCFT recipe uses are deferred (``g2p_en``, whose import tries
to download NLTK data and prints the refusals offline; see
:func:`espnet_gcft.asr.compat.defer_import`) and with ESPnet's import-time
FutureWarnings silenced. Its behaviour and exit status are ESPnet's own.
"""

import runpy
import sys
import warnings

from espnet_gcft.asr.compat import defer_unused_imports


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or not argv[0].startswith("espnet2.bin."):
        sys.exit("usage: python -m espnet_gcft.bin.espnet_cli espnet2.bin.<module> [args...]")
    defer_unused_imports()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"espnet2\.")
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
