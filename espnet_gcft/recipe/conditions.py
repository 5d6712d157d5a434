"""Decode-time context conditions built by re-pairing a set's own contexts.

- ``shuffled``: every utterance that has a previous one takes the context of
  an utterance of *another* session: the control that separates information
  from parameters. With a ``homophones`` file the donors are its P and W items
  (their context is a cue, a sentence that carries a sense: the control then
  gives a context as informative as a real one, only about another item),
  otherwise any utterance that has a previous one.
- ``opposite``: every context-decided item (type P or W of ``homophones``)
  takes the context of an item of the other sense (an item whose right
  spelling, or for an entity item type, is this item's alternative); every
  other utterance keeps its own. A far-cue item (P2, P3) takes it from an
  item of its own type, whose cue lies as far back.
- ``replaced<p>`` / ``dropped<p>`` (degraded context, e.g. ``replaced0.25``):
  a fraction ``p`` of the utterances that have a context take another
  session's context (replaced) or none, ``L = 0`` (dropped); the others keep
  their own. The degraded utterances of a smaller ``p`` are among those of a
  larger one (one random order, cut at ``p``), so the rows of a degradation
  table differ only by the added utterances. ``replaced`` draws its donors
  from any utterance of another session, with a seed of its own: ``replaced1``
  is not the ``shuffled`` pairing again.

All only re-pair existing contexts: the new scp points into the source's ark
(a dropped context into a one-entry ``empty.ark``), so no LLM call and no
embedding is repeated. The ``map`` file next to it says which utterance's
context each utterance received (``-``: none).
"""

import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import kaldiio
import numpy as np

from espnet_gcft.context.history import NO_PREVIOUS
from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_table, read_text, write_table_atomic
from espnet_gcft.scoring.homophones import Item

CONDITIONS = ("shuffled", "opposite")
CONTEXT_DECIDED = ("P", "W", "P2", "P3")
# the items whose own context (one previous utterance) is their cue
CUE_DONORS = ("P", "W")
# the types that trade contexts only among their own items
SAME_TYPE_DONORS = ("P2", "P3")
DEGRADED = re.compile(r"^(replaced|dropped)(0(\.[0-9]+)?|1(\.0*)?)$")
DROPPED = NO_PREVIOUS  # a pairing's donor for "no context"


class ConditionError(InputError, ValueError):
    """Inputs that cannot be re-paired (names the file and the utterance)."""


def sessions_of(utt2prev: Dict[str, str]) -> Dict[str, str]:
    """utt -> its session, named by the session's first utterance."""
    session = {}
    for utt in utt2prev:
        chain, current = [], utt
        while current not in session and utt2prev.get(current, NO_PREVIOUS) != NO_PREVIOUS:
            chain.append(current)
            current = utt2prev[current]
            if len(chain) > len(utt2prev):
                raise ConditionError(f"utt2prev has a cycle through utterance {utt}")
        root = session.get(current, current)
        for member in chain + [current]:
            session[member] = root
    return session


# the seed offset of replaced<p>'s donors (shuffled's are drawn with the seed itself)
REPLACED_SEED = 1


def shuffled_pairing(utt2prev: Dict[str, str], seed: int = 0,
                     items: Optional[Dict[str, Item]] = None) -> Dict[str, str]:
    """utt -> donor: a random utterance with a previous one from another session (a P or W
    item of ``items``, when there are some)."""
    session = sessions_of(utt2prev)
    donors = [u for u, p in utt2prev.items() if p != NO_PREVIOUS]
    decided = [u for u in donors if items and u in items and items[u].kind in CUE_DONORS]
    if decided:
        donors = decided
    if len({session[u] for u in donors}) < 2:
        raise ConditionError("shuffling needs at least two sessions with a previous utterance")
    rng = random.Random(seed)
    pairing = {}
    for utt, prev in utt2prev.items():
        if prev == NO_PREVIOUS:
            pairing[utt] = utt
            continue
        while True:
            donor = rng.choice(donors)
            if session[donor] != session[utt]:
                break
        pairing[utt] = donor
    return pairing


def parse_degraded(condition: str) -> Tuple[str, float]:
    """``replaced0.25`` -> ("replaced", 0.25); errors name the condition."""
    match = DEGRADED.match(condition)
    if match is None:
        raise ConditionError(f"condition {condition!r}: a degraded context is replaced<p> or "
                             "dropped<p> with 0 <= p <= 1, e.g. replaced0.25")
    return match.group(1), float(match.group(2))


def degraded_pairing(utt2prev: Dict[str, str], condition: str, seed: int = 0) -> Dict[str, str]:
    """utt -> donor (``DROPPED`` for none): a fraction p of the contexts replaced or dropped."""
    mode, fraction = parse_degraded(condition)
    eligible = [u for u, p in utt2prev.items() if p != NO_PREVIOUS]
    order = list(eligible)
    random.Random(seed).shuffle(order)
    chosen = set(order[:round(fraction * len(order))])
    pairing = {utt: utt for utt in utt2prev}
    if mode == "dropped":
        pairing.update({utt: DROPPED for utt in chosen})
    elif chosen:
        donors = shuffled_pairing(utt2prev, seed + REPLACED_SEED)
        pairing.update({utt: donors[utt] for utt in chosen})
    return pairing


def _donor_group(kind: str) -> str:
    return kind if kind in SAME_TYPE_DONORS else "P/W"


def opposite_pairing(utts: List[str], items: Dict[str, Item], seed: int = 0) -> Dict[str, str]:
    """utt -> donor: each P/W item takes the context of a P/W item of the other sense,
    each P2 (P3) item that of a P2 (P3) item of the other sense."""
    by_word: Dict[tuple, List[str]] = {}
    for utt, item in items.items():
        if item.kind in CONTEXT_DECIDED:
            by_word.setdefault((_donor_group(item.kind), item.word), []).append(utt)
    rng = random.Random(seed)
    pairing = {}
    for utt in utts:
        item = items.get(utt)
        if item is None or item.kind not in CONTEXT_DECIDED:
            pairing[utt] = utt
            continue
        group = _donor_group(item.kind)
        donors = by_word.get((group, item.alternative))
        if not donors:
            raise ConditionError(f"utterance {utt}: no {group} item spells {item.alternative!r}, "
                                 "so it has no opposite context")
        pairing[utt] = rng.choice(donors)
    return pairing


def read_scp_lines(scp: Path) -> Dict[str, str]:
    """utt -> ``<ark>:<offset>`` of a kaldiio scp."""
    return {fields[0]: fields[1] for _, fields in read_table(scp, min_fields=2, max_fields=2)}


def write_condition(pairing: Dict[str, str], source_dir: Path, scp_name: str,
                    out_dir: Path) -> None:
    """Write ``out_dir/<scp_name>`` (re-paired entries), ``map`` and ``text`` if the source has one."""
    source_scp = source_dir / scp_name
    entries = read_scp_lines(source_scp)
    missing = [d for d in pairing.values() if d not in entries and d != DROPPED]
    if missing:
        raise ConditionError(f"{source_scp}: no context for utterance {missing[0]}")
    if DROPPED in pairing.values():
        entries = dict(entries)
        entries[DROPPED] = empty_entry(source_scp, out_dir)
    texts: Optional[Dict[str, str]] = None
    if (source_dir / "text").is_file():
        texts = read_text(source_dir / "text")
    write_table_atomic(out_dir / "map", pairing.items())
    if texts is not None:
        write_table_atomic(out_dir / "text", ((u, texts.get(d, "")) for u, d in pairing.items()))
    write_table_atomic(out_dir / scp_name, ((u, entries[d]) for u, d in pairing.items()))


def empty_entry(source_scp: Path, out_dir: Path) -> str:
    """``<ark>:<offset>`` of a ``(0, C)`` matrix in ``out_dir/empty.ark``, C as in the source."""
    dim = None
    for utt, matrix in kaldiio.load_scp_sequential(str(source_scp)):
        dim = matrix.shape[1]
        break
    if dim is None:
        raise ConditionError(f"{source_scp}: no context to take the dimension from")
    out_dir.mkdir(parents=True, exist_ok=True)
    ark, scp = out_dir / "empty.ark", out_dir / "empty.scp"
    kaldiio.save_ark(str(ark), {DROPPED: np.zeros((0, dim), np.float32)}, scp=str(scp))
    return scp.read_text().split()[1]
