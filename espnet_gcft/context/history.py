"""Session history: which utterance comes before which (``utt2prev``).

``utt2prev`` has one line per utterance of ``text``, in the same order:
``<utt> <previous utt>``, or ``<utt> -`` for the first utterance of a session.
How sessions and their order are found depends on the corpus (``ORDERS``).
"""

from dataclasses import dataclass
from pathlib import Path
import re
from typing import Callable, Dict, List, Optional, Tuple

from espnet_gcft.errors import InputError
from espnet_gcft.fileio import format_table, read_table, utterance_ids, write_text_if_changed

NO_PREVIOUS = "-"


class HistoryError(InputError, ValueError):
    """Bad input to the history builder; names the file, line and utterance."""


@dataclass(frozen=True)
class Position:
    """Where an utterance sits: its session and a sortable key inside it."""

    session: str
    key: Tuple


LIBRISPEECH_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
VOXPOPULI_ID = re.compile(r"^(?P<session>[^_]+)_(?P<date>\d{8})-(?P<time>\d{2}:\d{2}:\d{2})_(?P<index>\d+)$")


def _librispeech(utt: str) -> Optional[Position]:
    match = LIBRISPEECH_ID.match(utt)
    if match is None:
        return None
    speaker, chapter, index = match.groups()
    return Position(f"{speaker}-{chapter}", (int(index),))


def _voxpopuli(utt: str) -> Optional[Position]:
    match = VOXPOPULI_ID.match(utt)
    if match is None:
        return None
    return Position(
        match["session"], (match["date"], match["time"], int(match["index"]))
    )


ID_PARSERS: Dict[str, Tuple[Callable[[str], Optional[Position]], str]] = {
    "librispeech": (_librispeech, "<speaker>-<chapter>-<NNNN>, e.g. 103-1240-0005"),
    "voxpopuli": (
        _voxpopuli,
        "<session>_<YYYYMMDD>-<HH:MM:SS>_<index>, "
        "e.g. 20090204-0900-PLENARY-3-en_20090204-09:07:32_17",
    ),
}
ORDERS = ("librispeech", "voxpopuli", "segments", "file")


def _positions_from_ids(text_file: Path, order: str, utts: Dict[str, int]) -> Dict[str, Position]:
    parse, form = ID_PARSERS[order]
    positions = {}
    for utt, lineno in utts.items():
        position = parse(utt)
        if position is None:
            raise HistoryError(
                f"{text_file}:{lineno}: utterance id {utt!r} is not a {order} id; "
                f"expected {form}"
            )
        positions[utt] = position
    return positions


def _positions_from_table(
    table: Path, utts: Dict[str, int], columns: int, parse_row: Callable[[List[str]], Position]
) -> Dict[str, Position]:
    positions: Dict[str, Position] = {}
    for lineno, fields in read_table(table, min_fields=columns):
        utt = fields[0]
        if utt in positions:
            raise HistoryError(f"{table}:{lineno}: utterance {utt} is listed twice")
        try:
            positions[utt] = parse_row(fields)
        except ValueError as error:
            raise HistoryError(f"{table}:{lineno}: utterance {utt}: {error}") from None
    missing = [u for u in utts if u not in positions]
    if missing:
        raise HistoryError(
            f"{table}: no entry for {len(missing)} utterance(s) of text, e.g. {missing[0]}"
        )
    return positions


def _segment_row(fields: List[str]) -> Position:
    # <utt> <recording> <start> <end>
    return Position(fields[1], (float(fields[2]), float(fields[3])))


def _session_row(fields: List[str]) -> Position:
    # <utt> <session> <position>
    return Position(fields[1], (float(fields[2]),))


def build_utt2prev(
    data_dir: Path, order: str, utt2session: Optional[Path] = None
) -> Dict[str, str]:
    """Map every utterance of ``data_dir`` to its predecessor (or ``-``).

    Args:
        data_dir: Kaldi data dir with ``text`` (a set without references:
            ``segments`` or ``wav.scp``), and ``segments`` for that order.
        order: one of ``ORDERS``.
        utt2session: ``<utt> <session> <position>`` file for ``order == "file"``.
    """
    if order not in ORDERS:
        raise HistoryError(f"unknown --order {order!r}; choose from {', '.join(ORDERS)}")
    text_file, utts = utterance_ids(data_dir)
    if order in ID_PARSERS:
        positions = _positions_from_ids(text_file, order, utts)
    elif order == "segments":
        positions = _positions_from_table(data_dir / "segments", utts, 4, _segment_row)
    else:
        if utt2session is None:
            raise HistoryError("--order file needs --utt2session <utt> <session> <position>")
        positions = _positions_from_table(utt2session, utts, 3, _session_row)
    sessions: Dict[str, List[str]] = {}
    for utt in utts:
        sessions.setdefault(positions[utt].session, []).append(utt)
    utt2prev = {}
    for session, members in sessions.items():
        members.sort(key=lambda u: positions[u].key)
        for earlier, later in zip(members, members[1:]):
            if positions[earlier].key == positions[later].key:
                raise HistoryError(
                    f"utterances {earlier} and {later} share position "
                    f"{positions[later].key} in session {session}"
                )
        for index, utt in enumerate(members):
            utt2prev[utt] = members[index - 1] if index > 0 else NO_PREVIOUS
    return {utt: utt2prev[utt] for utt in utts}


def write_utt2prev(data_dir: Path, utt2prev: Dict[str, str]) -> Path:
    """Write ``data_dir/utt2prev`` atomically; an unchanged file keeps its time stamp."""
    path = data_dir / "utt2prev"
    write_text_if_changed(path, format_table(utt2prev.items()))
    return path


def read_utt2prev(path: Path) -> Dict[str, str]:
    """Read ``utt2prev``; every line must be ``<utt> <prev>``."""
    return {fields[0]: fields[1] for _, fields in read_table(path, min_fields=2, max_fields=2)}


def previous_chain(utt: str, utt2prev: Dict[str, str], num_prev: int) -> List[str]:
    """Up to ``num_prev`` previous utterances of ``utt``, oldest first."""
    if num_prev < 1:
        raise ValueError(f"`num_prev` must be >= 1, got {num_prev}")
    chain: List[str] = []
    current = utt2prev.get(utt, NO_PREVIOUS)
    while current != NO_PREVIOUS and len(chain) < num_prev:
        chain.append(current)
        current = utt2prev.get(current, NO_PREVIOUS)
    return chain[::-1]


def previous_texts(
    texts: Dict[str, str], utt2prev: Dict[str, str], num_prev: int = 1
) -> Dict[str, str]:
    """Each utterance's previous text(s), joined oldest first ("" for none).

    Args:
        texts: utterance -> transcript (the set's ``text``).
        utt2prev: utterance -> previous utterance or ``-``.
        num_prev: how many previous utterances to join.
    """
    missing = [u for u in texts if u not in utt2prev]
    if missing:
        raise HistoryError(f"utt2prev has no entry for {len(missing)} utterance(s), e.g. {missing[0]}")
    return {
        utt: " ".join(texts[p] for p in previous_chain(utt, utt2prev, num_prev) if texts.get(p))
        for utt in texts
    }
