"""Helpers shared by the command-line entry points."""

from contextlib import contextmanager
import logging
import sys
from typing import Iterator, Tuple, Type


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s: %(message)s")


@contextmanager
def reported_errors(prog: str, errors: Tuple[Type[BaseException], ...]) -> Iterator[None]:
    """Turn the given input errors into ``<prog>: error: <message>`` and exit status 1.

    Only errors about the user's input are listed; anything else keeps its
    traceback, since it is a bug.
    """
    try:
        yield
    except errors as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
