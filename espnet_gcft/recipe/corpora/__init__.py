"""Kaldi data dirs from the official corpus releases (stage 1 of the corpus recipes).

Every corpus reader turns its release files into :class:`Utterance` records,
each remembering the file and line it came from; :func:`check_audio` reads
every audio header (of all sets, before anything is written) and
:func:`write_data_dir` writes one data dir (``wav.scp``, ``segments``, ``text``,
``transcript``, ``utt2spk``, ``spk2utt``, ``utt2prev``) so that a rerun on an
unchanged corpus leaves every file, and its time stamp, as it was.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import logging
from pathlib import Path
import shutil
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import soundfile
from tqdm import tqdm

from espnet_gcft.context.history import build_utt2prev
from espnet_gcft.errors import InputError
from espnet_gcft.fileio import write_table_atomic, write_text_if_changed

logger = logging.getLogger(__name__)

# Files a data dir of the corpus recipes may hold; stale ones are removed.
DATA_FILES = ("wav.scp", "segments", "text", "transcript", "utt2spk", "spk2utt", "utt2session",
              "utt2prev")


class CorpusError(InputError, ValueError):
    """Bad corpus input; the message names the file and line (or the directory)."""


@dataclass
class Utterance:
    """One utterance of a release, and where it was found.

    Attributes:
        utt: utterance id.
        speaker: speaker id (the utterance id itself when the release has none,
            the Kaldi convention for an unknown speaker).
        audio: audio file.
        where: ``<file>:<line>`` of the release row the utterance comes from.
        text: the target text (``None``: a set without references).
        transcript: the plain words (``None`` with ``text``).
        segment: ``(start, end)`` seconds inside ``audio``; ``None``: all of it.
        session: ``(session, position)`` for ``order="file"`` (``utt2session``).
    """

    utt: str
    speaker: str
    audio: Path
    where: str
    text: Optional[str] = None
    transcript: Optional[str] = None
    segment: Optional[Tuple[float, float]] = None
    session: Optional[Tuple[str, float]] = None


def _check_one(utt: Utterance) -> Optional[str]:
    """A problem with the utterance's audio, or None."""
    if not utt.audio.is_file():
        return f"audio file {utt.audio} does not exist"
    try:
        info = soundfile.info(str(utt.audio))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        return f"cannot read audio file {utt.audio}: {error}"
    if info.frames == 0:
        return f"audio file {utt.audio} is empty"
    if utt.segment is not None:
        start, end = utt.segment
        duration = info.frames / info.samplerate
        if not 0 <= start < end:
            return f"segment {start}-{end} s is not a time span"
        # Release times are rounded: a few hundredths past the end are read as the end.
        if start >= duration or end > duration + 0.1:
            return f"segment {start}-{end} s is outside {utt.audio} ({duration:.2f} s)"
    return None


def check_audio(utts: Sequence[Utterance], nj: int = 4, progress: bool = True) -> None:
    """Read every audio header (and check the segment times) before anything is written.

    Raises:
        CorpusError: the first bad utterance, naming its release file and line.
    """
    with ThreadPoolExecutor(max(1, nj)) as pool:
        problems = pool.map(_check_one, utts, chunksize=64)
        for utt, problem in tqdm(zip(utts, problems), total=len(utts), desc="audio headers",
                                 unit="utt", disable=not progress, mininterval=5):
            if problem is not None:
                raise CorpusError(f"{utt.where}: utterance {utt.utt}: {problem}")


def _sorted_unique(utts: Iterable[Utterance]) -> List[Utterance]:
    seen: Dict[str, Utterance] = {}
    for utt in utts:
        if utt.utt in seen:
            raise CorpusError(
                f"{utt.where}: utterance {utt.utt} is also at {seen[utt.utt].where}"
            )
        seen[utt.utt] = utt
    # Kaldi sorts tables in the C locale: byte order of the ids.
    return sorted(seen.values(), key=lambda u: u.utt.encode("utf-8"))


def _replace_if_changed(new: Path, old: Path) -> bool:
    """Put ``new``'s content in ``old`` unless they are equal (then ``old`` keeps its
    time stamp); ``new`` is removed either way."""
    changed = write_text_if_changed(old, new.read_text(encoding="utf-8"))
    new.unlink()
    return changed


def write_data_dir(
    out_dir: Path,
    utts: Iterable[Utterance],
    order: str,
) -> List[Utterance]:
    """Write one Kaldi data dir with its ``utt2prev`` (``--order`` of make_utt2prev;
    ``file`` takes the utterances' ``session`` and writes ``utt2session``).

    Every file is built and checked in a scratch dir first, so an error leaves
    ``out_dir`` as it was; files whose content did not change are not touched.

    Returns:
        The utterances, sorted by id.
    """
    utts = _sorted_unique(utts)
    if not utts:
        raise CorpusError(f"no utterances for {out_dir}")
    with_refs = [u.text is not None for u in utts]
    if any(with_refs) and not all(with_refs):
        first = utts[with_refs.index(False)]
        raise CorpusError(f"{first.where}: utterance {first.utt} has no text, unlike the rest of its set")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        segmented = any(u.segment is not None for u in utts)
        if segmented:
            # One recording per audio file; the segments cut the utterances from it.
            recordings = {}
            for u in utts:
                recordings.setdefault(str(u.audio.resolve()), u.audio.stem)
            write_table_atomic(scratch / "wav.scp", ((rec, path) for path, rec in sorted(
                recordings.items(), key=lambda item: item[1].encode("utf-8"))))
            write_table_atomic(scratch / "segments", (
                (u.utt, f"{recordings[str(u.audio.resolve())]} {u.segment[0]:.2f} {u.segment[1]:.2f}")
                for u in utts))
        else:
            write_table_atomic(scratch / "wav.scp", ((u.utt, str(u.audio.resolve())) for u in utts))
        if all(with_refs):
            write_table_atomic(scratch / "text", ((u.utt, u.text) for u in utts))
            write_table_atomic(scratch / "transcript", ((u.utt, u.transcript) for u in utts))
        write_table_atomic(scratch / "utt2spk", ((u.utt, u.speaker) for u in utts))
        speakers: Dict[str, List[str]] = {}
        for u in utts:
            speakers.setdefault(u.speaker, []).append(u.utt)
        write_table_atomic(scratch / "spk2utt", (
            (spk, " ".join(members)) for spk, members in sorted(speakers.items())))
        utt2session = None
        if order == "file":
            utt2session = scratch / "utt2session"
            write_table_atomic(utt2session, ((u.utt, f"{u.session[0]} {u.session[1]}") for u in utts))
        utt2prev = build_utt2prev(scratch, order, utt2session)
        write_table_atomic(scratch / "utt2prev", utt2prev.items())
        out_dir.mkdir(exist_ok=True)
        produced = [name for name in DATA_FILES if (scratch / name).is_file()]
        changed = [name for name in produced if _replace_if_changed(scratch / name, out_dir / name)]
        for name in DATA_FILES:
            if name not in produced and (out_dir / name).is_file():
                (out_dir / name).unlink()
                changed.append(f"-{name}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info(
        f"{out_dir}: {len(utts)} utterances, {len(speakers)} speakers, "
        f"{sum(p == '-' for p in utt2prev.values())} sessions"
        + (f"; updated {' '.join(changed)}" if changed else "; unchanged")
    )
    return utts
