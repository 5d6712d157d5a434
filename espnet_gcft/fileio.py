"""Kaldi-style tables (``<key> <value ...>`` per line), read strictly, written atomically.

The table I/O every layer uses (data dirs, context texts, scores): a line
that is malformed or not UTF-8, a repeated key or a missing file is an
:class:`~espnet_gcft.errors.InputError` naming the file and line.
"""

from contextlib import contextmanager
import hashlib
import os
from pathlib import Path
import tempfile
from typing import BinaryIO, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from espnet_gcft.errors import InputError, MissingInputError

PathLike = Union[str, Path]


class TableError(InputError, ValueError):
    """A malformed table line; the message names the file and line."""


def read_lines(path: PathLike) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, line)`` of a UTF-8 text file, newline included.

    Raises:
        MissingInputError: the file does not exist.
        TableError: a line with bytes that are not UTF-8 (file, line and byte named).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise MissingInputError(f"{path}: no such file") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise TableError(
                    f"{path}:{lineno}: not UTF-8 (byte {raw[error.start]:#04x} at column "
                    f"{error.start + 1}): {raw[:80]!r}"
                ) from None


def read_table(
    path: PathLike, min_fields: int = 1, max_fields: Optional[int] = None
) -> Iterator[Tuple[int, List[str]]]:
    """Yield ``(line number, fields)`` for each non-empty line.

    Raises:
        TableError: a line with fewer than ``min_fields`` or more than
            ``max_fields`` whitespace-separated fields.
    """
    for lineno, line in read_lines(path):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            expected = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            raise TableError(
                f"{path}:{lineno}: expected {expected} fields, got {len(fields)}: "
                f"{line.rstrip()[:80]!r}"
            )
        yield lineno, fields


def read_keys(path: PathLike) -> Dict[str, int]:
    """First-column keys of a table -> line number; a repeated key is an error."""
    keys: Dict[str, int] = {}
    for lineno, fields in read_table(path, min_fields=1):
        if fields[0] in keys:
            raise TableError(
                f"{path}: utterance {fields[0]} appears on line {keys[fields[0]]} and line {lineno}"
            )
        keys[fields[0]] = lineno
    return keys


def utterance_ids(data_dir: PathLike) -> Tuple[Path, Dict[str, int]]:
    """The utterances of a Kaldi data dir, in order: ``(file they come from, id -> line)``.

    ``text`` lists them; a set without references (a blind test set, decoded
    but not scored) has no ``text``, and then ``segments`` or else ``wav.scp``
    does.
    """
    data_dir = Path(data_dir)
    for name in ("text", "segments", "wav.scp"):
        if (data_dir / name).is_file():
            return data_dir / name, read_keys(data_dir / name)
    raise MissingInputError(f"{data_dir} has neither text, segments nor wav.scp")


def transcript_file(data_dir: PathLike, name: Optional[str] = None) -> Path:
    """The file of a data dir that holds the plain transcripts.

    ``name`` when given (relative to ``data_dir``, or absolute); otherwise
    ``transcript`` when the dir has one (the task's ``text`` may carry NER
    tags or a sentiment label, which must not reach an LLM or a text
    encoder), else ``text``.
    """
    data_dir = Path(data_dir)
    if name is not None:
        return data_dir / name
    return data_dir / ("transcript" if (data_dir / "transcript").is_file() else "text")


def read_text(path: PathLike) -> Dict[str, str]:
    """Read ``<utt> <text ...>`` (the text may be empty); repeated ids are errors."""
    texts: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    for lineno, line in read_lines(path):
        parts = line.rstrip("\n").split(maxsplit=1)
        if not parts:
            continue
        utt = parts[0]
        if utt in texts:
            raise TableError(
                f"{path}: utterance {utt} appears on line {lines[utt]} and line {lineno}"
            )
        texts[utt] = " ".join(parts[1].split()) if len(parts) > 1 else ""
        lines[utt] = lineno
    return texts


def key_mismatch(keys: Iterable[str], reference: Iterable[str]) -> Optional[Tuple[str, str]]:
    """The first key found in only one of two collections, or None if they agree.

    Returns ``(key, "missing")`` for a key of ``reference`` absent from
    ``keys`` (checked first), ``(key, "extra")`` for a key of ``keys`` absent
    from ``reference``.
    """
    keys, reference = list(keys), list(reference)
    known, wanted = set(reference), set(keys)
    missing = next((k for k in reference if k not in wanted), None)
    if missing is not None:
        return missing, "missing"
    extra = next((k for k in keys if k not in known), None)
    return None if extra is None else (extra, "extra")


def format_table(rows: Iterable[Tuple[str, str]]) -> str:
    """``<key> <value>`` lines (no trailing blank when the value is empty)."""
    return "".join(f"{k} {v}".rstrip() + "\n" for k, v in rows)


def write_table_atomic(path: PathLike, rows: Iterable[Tuple[str, str]]) -> None:
    """Write ``<key> <value>`` lines to a temporary file, then rename it to ``path``."""
    write_text_atomic(path, format_table(rows))


@contextmanager
def atomic_file(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only when the ``with`` block ends without error.

    The content goes to a hidden temporary file beside ``path`` (``.<name>.*.tmp``),
    is synced to disk, then renamed over ``path``: a reader, or a run resumed after
    a kill, a full disk or a reboot, sees the old file or the new one, never a torn
    one. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file owner-only; the result gets the mode open() would give
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: PathLike, content: str) -> None:
    """Replace ``path`` with ``content`` so readers never see a partial file."""
    with atomic_file(path) as f:
        f.write(content.encode("utf-8"))


def write_ark_atomic(ark: PathLike, scp: PathLike, items: Iterable[Tuple[str, object]]) -> None:
    """Write ``(key, matrix)`` items as a kaldiio ``ark`` and its ``scp``, both or neither.

    The pair is written under temporary names and moved into place once every
    item is written (the ark first, then the scp that points into it), so a
    failed or killed run leaves no ark or scp that a reader would take as whole.
    The scp names the ark by ``ark`` as given (relative paths stay relative).
    """
    import kaldiio

    ark, scp = Path(ark), Path(scp)
    ark.parent.mkdir(parents=True, exist_ok=True)
    scp.parent.mkdir(parents=True, exist_ok=True)
    tmp_ark, tmp_scp = ark.with_name(f".{ark.name}.tmp"), scp.with_name(f".{scp.name}.tmp")
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for key, matrix in items:
                writer(key, matrix)
        index = tmp_scp.read_text(encoding="utf-8").replace(str(tmp_ark), str(ark))
        os.replace(tmp_ark, ark)
        write_text_atomic(scp, index)
    finally:
        tmp_ark.unlink(missing_ok=True)
        tmp_scp.unlink(missing_ok=True)


def write_text_if_changed(path: PathLike, content: str) -> bool:
    """Write ``content`` to ``path`` (atomically) unless the file already holds it.

    An unchanged file keeps its time stamp, so that rewriting a stage's first
    outputs with the same content (a rerun of data preparation) does not make
    every later step look out of date. Returns whether the file was written.
    """
    path = Path(path)
    if path.is_file() and path.read_bytes() == content.encode("utf-8"):
        return False
    write_text_atomic(path, content)
    return True


def file_hash(path: PathLike) -> str:
    """sha256 of a file's bytes (hex, first 16 characters)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
