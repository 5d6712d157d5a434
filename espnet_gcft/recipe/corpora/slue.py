"""SLUE-VoxPopuli (ASR + NER) and SLUE-VoxCeleb (sentiment + ASR) releases.

SLUE-VoxPopuli under ``--corpus_dir``: ``slue-voxpopuli_{fine-tune,dev,test_blind}.tsv``
(columns ``id raw_text normalized_text speaker_id split raw_ner normalized_ner``)
and ``{fine-tune,dev,test}/<id>.ogg``. The NER cells are Python-literal lists of
``[label, char_start, char_length]`` into ``normalized_text``, or ``None``/``[]``.

SLUE-VoxCeleb under ``--corpus_dir``: ``slue-voxceleb_{fine-tune,dev,test_blind}.tsv``
(columns ``id normalized_text speaker_id split sentiment start_second end_second``)
and ``{fine-tune,dev,test}_raw/<id>.flac``; the speech is ``start_second`` to
``end_second`` of that file (a ``segments`` line).

The blind test tsvs carry no references: only their ``id`` column is needed.
"""

import ast
import csv
from pathlib import Path
import re
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_gcft.recipe.corpora import CorpusError, Utterance
from espnet_gcft.scoring.slu import SENTIMENTS

# Release file -> data dir, audio dir (SLUE's own names).
SPLITS = {"train": ("fine-tune", "fine-tune"), "devel": ("dev", "dev"), "test": ("test_blind", "test")}
VOXPOPULI_COLUMNS = ("id", "raw_text", "normalized_text", "speaker_id", "split", "raw_ner",
                     "normalized_ner")
VOXCELEB_COLUMNS = ("id", "normalized_text", "speaker_id", "split", "sentiment", "start_second",
                    "end_second")

# OntoNotes labels of the release -> SLUE's combined NER labels; the other
# OntoNotes labels are dropped, as SLUE does (slue-toolkit raw_to_combined_tag_map).
COMBINED_LABEL = {
    "GPE": "PLACE", "LOC": "PLACE",
    "CARDINAL": "QUANT", "MONEY": "QUANT", "ORDINAL": "QUANT", "PERCENT": "QUANT", "QUANTITY": "QUANT",
    "ORG": "ORG", "DATE": "WHEN", "TIME": "WHEN", "NORP": "NORP", "PERSON": "PERSON", "LAW": "LAW",
}
DROPPED_LABELS = frozenset({"FAC", "EVENT", "WORK_OF_ART", "PRODUCT", "LANGUAGE"})
# Rows with these sentiments (annotators disagreed) are left out of fine-tune and
# dev, as slue-toolkit's create_manifest keeps only Negative/Neutral/Positive.
MIXED_SENTIMENTS = frozenset({"<mixed>", "Disagreement"})
VOXCELEB_ID = re.compile(r"^(?P<speaker>id\d+)_(?P<video>.+)_(?P<index>\d+)$")


def read_tsv(path: Path, columns: Sequence[str], required: Sequence[str]) -> List[Tuple[int, Dict[str, str]]]:
    """``(line, row)`` of a release tsv; a header and rows with its column count.

    Raises:
        CorpusError: a missing file, a header without the ``required`` columns,
            a row with another number of cells or bytes that are not UTF-8,
            naming file and line.
    """
    if not path.is_file():
        raise CorpusError(f"{path} does not exist")
    # utf-8-sig: a byte-order mark (a spreadsheet's export) is not part of the first column name
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            return _read_rows(path, reader, columns, required)
        except UnicodeDecodeError as error:
            raise CorpusError(f"{path}:{reader.line_num + 1}: not UTF-8 text: {error}") from None


def _read_rows(path: Path, reader, columns: Sequence[str],
               required: Sequence[str]) -> List[Tuple[int, Dict[str, str]]]:
    header = next(reader, None)
    if header is None:
        raise CorpusError(f"{path} is empty")
    missing = [c for c in required if c not in header]
    if missing:
        raise CorpusError(
            f"{path}:1: the header lacks column(s) {', '.join(missing)} "
            f"(expected {' '.join(columns)})")
    rows = []
    for cells in reader:
        lineno = reader.line_num
        if not cells or cells == [""]:
            continue
        if len(cells) != len(header):
            raise CorpusError(
                f"{path}:{lineno}: expected {len(header)} tab-separated columns, got {len(cells)}")
        rows.append((lineno, dict(zip(header, cells))))
    return rows


def _speaker(row: Dict[str, str], unknown: str) -> str:
    """The release speaker id; ``unknown`` when the cell says none (``None``, empty)."""
    speaker = row.get("speaker_id", "").strip()
    if speaker in ("", "None", "nan"):
        return unknown
    if "." in speaker and speaker.replace(".", "", 1).isdigit():  # 12345.0 from a spreadsheet
        speaker = speaker.split(".")[0]
    return speaker


def parse_ner_cell(cell: str, where: str) -> List[Tuple[str, int, int]]:
    """``[[label, start, length], ...]`` of a NER cell (``None``, ``[]`` or empty: none)."""
    cell = cell.strip()
    if cell in ("", "None", "[]"):
        return []
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        raise CorpusError(f"{where}: the NER cell is not a Python list: {cell[:80]!r}") from None
    if not isinstance(value, (list, tuple)):
        raise CorpusError(f"{where}: the NER cell is not a list: {cell[:80]!r}")
    spans = []
    for item in value:
        if (not isinstance(item, (list, tuple)) or len(item) != 3 or not isinstance(item[0], str)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in item[1:])):
            raise CorpusError(f"{where}: NER entries are [label, start, length], got {item!r}")
        spans.append((item[0], item[1], item[2]))
    return spans


def _splits_a_word(text: str, index: int) -> bool:
    """Whether ``index`` falls between two letters or digits of one word."""
    return 0 < index < len(text) and text[index - 1].isalnum() and text[index].isalnum()


def tag_entities(text: str, spans: List[Tuple[str, int, int]], utt: str, where: str) -> str:
    """``text`` with every kept entity written as ``TYPE FILL <phrase> SEP``.

    Tags go in from the last offset backwards so that earlier offsets stay
    valid. A span may touch punctuation or a possessive (``europe's``: the
    entity is ``europe``, tagged as ``... SEP 's``); a span outside the text,
    blank, cutting a word in two, or overlapping another is an error naming the
    utterance.
    """
    kept = []
    for label, start, length in spans:
        if label in COMBINED_LABEL:
            kept.append((start, length, COMBINED_LABEL[label]))
        elif label not in DROPPED_LABELS:
            raise CorpusError(f"{where}: utterance {utt}: unknown NER label {label!r}")
    kept.sort()
    for (start, length, _), (next_start, _, _) in zip(kept, kept[1:]):
        if start + length > next_start:
            raise CorpusError(f"{where}: utterance {utt}: NER spans at {start} and {next_start} overlap")
    for start, length, label in reversed(kept):
        end = start + length
        phrase = text[start:end]
        if (start < 0 or length <= 0 or end > len(text) or not phrase.strip()
                or _splits_a_word(text, start) or _splits_a_word(text, end)):
            raise CorpusError(
                f"{where}: utterance {utt}: NER span [{label}, {start}, {length}] does not match "
                f"the words of the text ({phrase!r} in {text[:120]!r})")
        text = f"{text[:start]} {label} FILL {phrase.strip()} SEP {text[end:]}"
    return " ".join(text.split())


def clean_text(text: str) -> str:
    """SLUE's normalized text as ESPnet's slue-voxpopuli recipe trains on it.

    Sentence punctuation (``. ; ? !``) is dropped and the ``<unk>`` token
    becomes ``unknown``; whitespace is collapsed. Applied after tagging, so
    the release's offsets are used on the text they index.
    """
    text = re.sub(r"[.;?!]", "", text.replace("<unk>", "unknown"))
    return " ".join(text.split())


def read_voxpopuli(corpus_dir: Path, task: str = "ner") -> Dict[str, List[Utterance]]:
    """``train``, ``devel`` and ``test`` (blind: no references) of SLUE-VoxPopuli.

    Args:
        task: ``ner`` (text: tagged target) or ``asr`` (text: the transcript).
    """
    sets = {}
    for name, (release, audio_dir) in SPLITS.items():
        tsv = corpus_dir / f"slue-voxpopuli_{release}.tsv"
        blind = release == "test_blind"
        required = ("id",) if blind else ("id", "normalized_text", "normalized_ner")
        utts = []
        for lineno, row in read_tsv(tsv, VOXPOPULI_COLUMNS, required):
            where = f"{tsv}:{lineno}"
            utt = row["id"].strip()
            if not utt:
                raise CorpusError(f"{where}: empty id")
            # an unknown speaker: the utterance is its own speaker (Kaldi's convention)
            record = Utterance(utt=utt, speaker=_speaker(row, utt),
                               audio=corpus_dir / audio_dir / f"{utt}.ogg", where=where)
            if not blind:
                transcript = clean_text(row["normalized_text"].lower())
                if not transcript:
                    raise CorpusError(f"{where}: utterance {utt} has an empty normalized_text")
                spans = parse_ner_cell(row["normalized_ner"], where)
                # offsets index normalized_text itself; lowercasing keeps them
                tagged = clean_text(tag_entities(row["normalized_text"].lower(), spans, utt, where))
                record.transcript = transcript
                record.text = tagged if task == "ner" else transcript
            utts.append(record)
        sets[name] = utts
    return sets


def _seconds(row: Dict[str, str], column: str, where: str) -> float:
    try:
        return float(row[column])
    except ValueError:
        raise CorpusError(f"{where}: {column} is not a number: {row[column]!r}") from None


def read_voxceleb(corpus_dir: Path) -> Tuple[Dict[str, List[Utterance]], Dict[str, int]]:
    """``train``, ``devel`` and ``test`` (blind) of SLUE-VoxCeleb, and the mixed rows left out.

    The target is the sentiment label, then the transcript. A clip
    ``id<speaker>_<video>_<index>`` belongs to the session ``<speaker>_<video>``
    (VoxCeleb numbers the clips of each speaker in each video), ordered by
    ``<index>``; the start/end seconds are offsets inside each clip's own raw
    file, so they cannot order clips.
    """
    sets = {}
    dropped = {}
    for name, (release, audio_dir) in SPLITS.items():
        tsv = corpus_dir / f"slue-voxceleb_{release}.tsv"
        blind = release == "test_blind"
        required = ("id",) if blind else ("id", "normalized_text", "sentiment", "start_second",
                                          "end_second")
        utts = []
        dropped[name] = 0
        for lineno, row in read_tsv(tsv, VOXCELEB_COLUMNS, required):
            where = f"{tsv}:{lineno}"
            utt = row["id"].strip()
            match = VOXCELEB_ID.match(utt)
            if match is None:
                raise CorpusError(f"{where}: id {utt!r} is not id<speaker>_<video>_<index>")
            segment = None
            if "start_second" in row and "end_second" in row:
                segment = (_seconds(row, "start_second", where), _seconds(row, "end_second", where))
            # a clip id starts with its speaker: the fallback for an empty speaker_id
            record = Utterance(utt=utt, speaker=_speaker(row, match["speaker"]),
                               audio=corpus_dir / f"{audio_dir}_raw" / f"{utt}.flac", where=where,
                               segment=segment,
                               session=(f"{match['speaker']}_{match['video']}", int(match["index"])))
            if not blind:
                sentiment = row["sentiment"].strip()
                if sentiment in MIXED_SENTIMENTS:
                    dropped[name] += 1
                    continue
                if sentiment not in SENTIMENTS:
                    raise CorpusError(
                        f"{where}: utterance {utt}: sentiment {sentiment!r} is not one of "
                        f"{', '.join(SENTIMENTS)} (or {', '.join(sorted(MIXED_SENTIMENTS))})")
                transcript = " ".join(row["normalized_text"].split())
                if not transcript:
                    raise CorpusError(f"{where}: utterance {utt} has an empty normalized_text")
                record.transcript = transcript
                record.text = f"{sentiment} {transcript}"
            utts.append(record)
        sets[name] = utts
    return sets, dropped


def missing_release(corpus_dir: Path, corpus: str) -> Optional[str]:
    """The first release file of ``corpus`` (``voxpopuli``/``voxceleb``) absent from ``corpus_dir``."""
    for release, audio_dir in SPLITS.values():
        tsv = corpus_dir / f"slue-{corpus}_{release}.tsv"
        audio = corpus_dir / (audio_dir if corpus == "voxpopuli" else f"{audio_dir}_raw")
        for path in (tsv, audio):
            if not path.exists():
                return str(path)
    return None
