"""Helpers shared by the command-line entry points: one log format, one error format."""

from contextlib import contextmanager
import logging
import sys
from typing import Iterator

from espnet_gcft.errors import InputError

# Every CLI of the package logs in this format (ESPnet's own training and
# inference loggers included, see setup_logging).
LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """The package's log format on the root logger, replacing any earlier set-up."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)


@contextmanager
def reported_errors(prog: str) -> Iterator[None]:
    """Turn an :class:`~espnet_gcft.errors.InputError` into one line,
    ``<prog>: error: <message>``, and exit status 1.

    Only input errors are caught: anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


DECODE_OPTIONS = ("decode_mode", "beam_size", "ctc_weight", "penalty", "maxlenratio", "minlenratio")


def add_decode_options(parser, decode_mode: str = "beam") -> None:
    """The decoding options of ``GCFTSpeech2Text`` (gcft_inference's and transcribe's; a
    ``--config`` YAML such as a recipe's conf/decode.yaml sets them in both)."""
    add = parser.add_argument
    add("--decode_mode", choices=("greedy", "beam"), default=decode_mode,
        help="greedy: CTC argmax; beam: ESPnet's beam search with the options below")
    add("--beam_size", type=int, default=10)
    add("--ctc_weight", type=float, default=0.3,
        help="CTC weight in beam search (1.0 for CTC-only models)")
    add("--penalty", type=float, default=0.0)
    add("--maxlenratio", type=float, default=0.0)
    add("--minlenratio", type=float, default=0.0)
    add("--batch_size", type=int, default=1,
        help="utterances encoded at once (the SSL upstream still runs on each alone: "
             "GCFTSpeech2Text.encode_batch); 1: one by one")


def decode_options(args) -> dict:
    """The ``GCFTSpeech2Text`` keyword arguments of :func:`add_decode_options`' options."""
    return {name: getattr(args, name) for name in DECODE_OPTIONS}
