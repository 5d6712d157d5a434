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
