"""The one base class of the errors a user's input causes.

A command-line tool catches :class:`InputError` only and prints it as one
line (``<prog>: error: <message>``, the message naming the file, line,
utterance or option); every other exception is a bug and keeps its
traceback. Each layer's own error (a malformed table, a prompt, a corpus, a
context file, ...) derives from it.
"""


class InputError(Exception):
    """Bad input: a file, a line, an utterance id or an option. The message names it."""


class MissingInputError(InputError, FileNotFoundError):
    """An input file or directory that does not exist."""
