#!/usr/bin/env python3
"""Write the mini corpus text: a diagnostic corpus in which context decides spellings.

Usage::

    python local/corpus/write_corpus.py > local/corpus/corpus.tsv

Six homophone pairs (knight/night, flour/flower, pear/pair, hare/hair,
sail/sale, tail/tale) that espeak-ng speaks alike (``synthesize.py`` checks it,
utterance by utterance). Each homophone sits in a *carrier* sentence; what
decides its spelling depends on the item type:

- ``P``: only the previous sentence (the *cue*, "we saw the sword and the
  castle") decides; the carrier says nothing ("they talked about the knight").
- ``W``: the previous sentence decides and the carrier also names a topic word
  ("look at the knight and the horse"): a student that predicts the context
  from the current audio can help here.
- ``C``: calibration: the carrier alone decides ("look at the knight and the
  horse"); the previous sentence is neutral ("then it was quiet").

Training also holds topic sessions: cue-like sentences of one sense and no
homophone, distillation targets without spelling labels. Cues are built from
topic words; two topic words per sense are held out of training and dev, so
the test set has cues seen in training (``cue_seen=yes``) and cues drawn from
the held-out ones, which mostly pair a held-out word with a seen one
(``cue_seen=part``; ``no`` when both words are held out). Every sense has the same number of items of each type
per voice in every split; dev and test are separate sessions. The output is
deterministic (fixed seed) and committed; ``synthesize.py`` makes the audio.

Splits added later follow the rows of train, dev and test, drawn from a seed
of their own, so that those rows (and their audio) stay as they were:

- ``test_far``: items whose cue lies further back: ``P2`` (cue, one neutral
  *filler* sentence, carrier) and ``P3`` (cue, two fillers, carrier), with the
  carriers of P items; half of the cues held out of training. The cues are
  recordings of the test set's own cues (same sense, voice and seen-ness), so
  they add no audio. Fillers are drawn independently of the sense, so they
  cannot tell it.
- ``ner_train``, ``ner_dev``, ``ner_test``: entity items (type ``P``). A name
  is a PERSON in one session and a PLACE in another (washington, jordan,
  georgia), or an ORG in one and no entity (``O``) in another (apple, orange,
  blackberry); only the previous sentence (a cue about politicians and
  singers, travel and borders, companies and phones, or juice and pies)
  decides which, the carrier ("they talked about washington") does not. Half
  of the ner_test cues come from held-out topic words. ner_train draws each
  type's cues from twelve recordings per voice, each used twice. These
  sessions have no opener.

Columns (tab-separated): ``utt_id voice speed split sentiment text type word
alternative cue_seen``. ``text`` marks entities as ``TYPE FILL <words> SEP``; ``type``
is ``P``/``W``/``C``/``P2``/``P3`` for an item, ``cue`` for a sentence that
decides an item (the next one, or for P2/P3 the one 2/3 sentences on),
``filler`` for a neutral sentence between a far cue and its item, ``topic``
for a topic-session sentence and ``-`` otherwise. For a homophone item
``word`` is the homophone as spelled in ``text`` and ``alternative`` its other
spelling; for an entity item ``word`` is the name (its type is the tag around
it in ``text``, ``O`` if untagged) and ``alternative`` the other type (``-``
when not an item); ``cue_seen`` says what of the deciding sentence's topic
words training saw (``yes``: both, ``part``: one, ``no``: neither; ``-`` when not P/W/P2/P3).
"""

from itertools import combinations
import random
import sys
from typing import Dict, List, Tuple

PAIRS = [("knight", "night"), ("flour", "flower"), ("pear", "pair"), ("hare", "hair"),
         ("sail", "sale"), ("tail", "tale")]
# sense -> topic words; the last two are held out of training and dev (test-only cues).
TOPICS: Dict[str, List[str]] = {
    "knight": ["armour", "sword", "castle", "king", "horse", "shield", "lance", "dragon"],
    "night": ["moon", "stars", "darkness", "pillow", "lamp", "owl", "dream", "blanket"],
    "flour": ["baker", "bread", "dough", "oven", "sugar", "butter", "recipe", "muffin"],
    "flower": ["garden", "rose", "tulip", "petal", "bee", "seed", "vase", "blossom"],
    "pear": ["orchard", "apple", "plum", "fruit", "peach", "harvest", "cherry", "melon"],
    "pair": ["shoe", "sock", "glove", "boot", "sandal", "slipper", "earring", "mitten"],
    "hare": ["fox", "meadow", "rabbit", "burrow", "hunter", "field", "badger", "hedgehog"],
    "hair": ["barber", "comb", "scissors", "shampoo", "brush", "curl", "salon", "ribbon"],
    "sail": ["boat", "harbour", "mast", "yacht", "sailor", "anchor", "ocean", "captain"],
    "sale": ["shop", "price", "customer", "store", "discount", "bargain", "cashier", "receipt"],
    "tail": ["dog", "puppy", "cat", "kitten", "fur", "collar", "paw", "tiger"],
    "tale": ["story", "book", "grandmother", "fairy", "writer", "chapter", "legend", "poem"],
}
HELD_OUT = 2
CUE_FRAMES = ["we saw the {a} and the {b}", "she spoke of the {a} and the {b}",
              "there was the {a} by the {b}", "he thought about the {a} and the {b}"]
CARRIERS = ["they talked about the {w}", "look at the {w}", "we all saw the {w}",
            "nobody forgot the {w}"]
TOPIC_CARRIERS = ["look at the {w} and the {t}", "we all saw the {w} with the {t}",
                  "they talked about the {w} and the {t}"]
NEUTRAL = ["then it was quiet", "nobody said a word", "we met again later",
           "it was a normal day", "the day went on", "everyone sat down"]
# split -> item type -> items per sense (each a multiple of the number of voices)
COUNTS = {"train": {"P": 24, "W": 8, "C": 8},
          "dev": {"P": 4, "W": 4, "C": 4},
          "test": {"P": 16, "W": 8, "C": 4}}
ITEMS_PER_SESSION = 6
TOPIC_SESSIONS_PER_SENSE = 2
TOPIC_SESSION_LENGTH = 6
VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-us+f3"]
SPEEDS = [165, 175, 185]  # words per minute: the same text is spoken at several paces

PEOPLE = ["anna", "peter", "maria", "john", "sofia", "david", "laura", "tom"]
PLACES = ["paris", "london", "berlin", "dublin", "madrid", "vienna"]
DAYS = ["monday", "friday", "sunday", "today"]
ORGS = ["the council", "the museum", "the school"]
NUMBERS = ["three", "five", "twelve", "twenty"]


def tag(kind: str, words: str) -> str:
    return f"{kind} FILL {words} SEP"


def opener(rng: random.Random) -> Tuple[str, str]:
    """The first sentence of a session: entities and a sentiment, no homophone."""
    person, other = rng.sample(PEOPLE, 2)
    return rng.choice([
        (f"{tag('PERSON', person)} went to {tag('PLACE', rng.choice(PLACES))} on "
         f"{tag('WHEN', rng.choice(DAYS))}", "Neutral"),
        (f"{tag('PERSON', person)} and {tag('PERSON', other)} loved "
         f"{tag('PLACE', rng.choice(PLACES))}", "Positive"),
        (f"{tag('ORG', rng.choice(ORGS))} invited {tag('QUANT', rng.choice(NUMBERS))} guests",
         "Positive"),
        (f"{tag('PERSON', person)} hated the rain in {tag('PLACE', rng.choice(PLACES))}",
         "Negative"),
    ])


def other_sense(sense: str) -> str:
    pair = next(p for p in PAIRS if sense in p)
    return pair[1] if pair[0] == sense else pair[0]


def cue_pool(sense: str, held_out: bool) -> List[str]:
    """Cue sentences of a sense: two topic words in a frame.

    Without ``held_out`` only the training topic words are used; with it, every
    cue has at least one held-out word (cues never seen in training).
    """
    words = TOPICS[sense]
    seen_words = set(words[:-HELD_OUT])
    cues = []
    for a, b in combinations(words, 2):
        if held_out == ({a, b} <= seen_words):
            continue
        cues += [frame.format(a=a, b=b) for frame in CUE_FRAMES]
    return cues


def items(split: str, rng: random.Random) -> List[dict]:
    """The homophone items of a split: sense x type x voice, balanced."""
    out = []
    for sense in TOPICS:
        seen_cues, unseen_cues = cue_pool(sense, False), cue_pool(sense, True)
        topic_words = TOPICS[sense][:-HELD_OUT]
        for kind, count in COUNTS[split].items():
            for index in range(count):
                voice = VOICES[index % len(VOICES)]
                # test: half of the P and W cues come from the held-out topic words
                unseen = split == "test" and kind != "C" and (index // len(VOICES)) % 2 == 1
                if kind == "C":
                    previous = rng.choice(NEUTRAL)
                else:
                    previous = rng.choice(unseen_cues if unseen else seen_cues)
                if kind == "P":
                    carrier = rng.choice(CARRIERS).format(w=sense)
                else:
                    carrier = rng.choice(TOPIC_CARRIERS).format(w=sense, t=rng.choice(topic_words))
                out.append(dict(sense=sense, kind=kind, voice=voice, previous=previous,
                                carrier=carrier, cue_seen=("no" if unseen else "yes")
                                if kind != "C" else "-"))
    return out


def rows_of_session(rng: random.Random, session_items: List[dict]) -> List[tuple]:
    """(text, sentiment, type, word, alternative, cue) rows of one session."""
    rows = [(*opener(rng), "-", "-", "-", "-")]
    for item in session_items:
        rows.append((item["previous"], "Neutral", "cue" if item["kind"] != "C" else "-",
                     "-", "-", "-"))
        rows.append((item["carrier"], "Neutral", item["kind"], item["sense"],
                     other_sense(item["sense"]), item["cue_seen"]))
    return rows


def topic_session(rng: random.Random, sense: str) -> List[tuple]:
    cues = rng.sample(cue_pool(sense, False), TOPIC_SESSION_LENGTH)
    return [(cue, "Neutral", "topic", "-", "-", "-") for cue in cues]


def sessions(split: str, rng: random.Random) -> List[Tuple[str, List[tuple]]]:
    """(voice, rows) of every session of a split, in a shuffled order."""
    by_voice: Dict[str, List[dict]] = {voice: [] for voice in VOICES}
    for item in items(split, rng):
        by_voice[item["voice"]].append(item)
    out = []
    for voice, voice_items in by_voice.items():
        rng.shuffle(voice_items)
        for start in range(0, len(voice_items), ITEMS_PER_SESSION):
            out.append((voice, rows_of_session(rng, voice_items[start:start + ITEMS_PER_SESSION])))
    if split == "train":
        for sense in TOPICS:
            for index in range(TOPIC_SESSIONS_PER_SENSE):
                out.append((VOICES[(index + list(TOPICS).index(sense)) % len(VOICES)],
                            topic_session(rng, sense)))
    rng.shuffle(out)
    return out


# ---- Added splits: far cues (test_far) and entity types (ner_*). ----
ADDED_SEED = 20261212
ADDED_SPLITS = ("test_far", "ner_train", "ner_dev", "ner_test")
# test_far: items per sense of each type (a multiple of twice the number of voices,
# so that every voice has as many seen as held-out cues), and the neutral
# sentences between the cue and the carrier
FAR_COUNTS = {"P2": 8, "P3": 8}
FAR_GAP = {"P2": 1, "P3": 2}
# Chosen independently of the item's sense, so they cannot tell it; NEUTRAL's two
# sentences about the day are left out (day / night).
FILLERS = ["then it was quiet", "nobody said a word", "we met again later", "everyone sat down"]
# Entity items: a name whose entity type only the previous sentence decides.
# Each pair of types has its names and, per type, eight cue topic words (the
# last two held out of ner_train and ner_dev); "O" is no entity at all.
ENTITY_NAMES = {("PERSON", "PLACE"): ["washington", "jordan", "georgia"],
                ("ORG", "O"): ["apple", "orange", "blackberry"]}
ENTITY_TOPICS: Dict[str, List[str]] = {
    "PERSON": ["senator", "singer", "friend", "actor", "president", "cousin", "drummer", "lawyer"],
    "PLACE": ["map", "airport", "border", "capital", "passport", "mountains", "coast", "valley"],
    "ORG": ["company", "shares", "phone", "laptop", "investors", "headquarters", "brand",
            "factory"],
    "O": ["juice", "pie", "basket", "tree", "salad", "breakfast", "knife", "bowl"],
}
NO_ENTITY = "O"
# no article: "the" before a name would tell a plain word from a name
ENTITY_CARRIERS = ["they talked about {w}", "nobody forgot {w}", "we all heard about {w}"]
# items per entity type (a multiple of the voices times the names of a pair: every
# voice has every name equally often)
ENTITY_COUNTS = {"ner_train": 96, "ner_dev": 12, "ner_test": 24}
# ner_train draws its cues per type and voice from this many spoken cues (text
# and pace), each used equally often: more items than distinct recordings keeps
# the audio small.
NER_TRAIN_CUES = 12

Row = tuple  # (text, sentiment, type, word, alternative, cue_seen[, speed])


def test_cues(test_rows: List[Tuple[str, str, Row]]) -> Dict[Tuple[str, str, str], List[Row]]:
    """(sense, voice, cue_seen) -> the test set's P/W cues as (text, speed)."""
    cues: Dict[Tuple[str, str, str], List[Row]] = {}
    for (voice, speed, row), (_, _, item) in zip(test_rows, test_rows[1:]):
        if row[2] == "cue" and item[2] in ("P", "W"):
            cues.setdefault((item[3], voice, item[5]), []).append((row[0], speed))
    return cues


def far_items(rng: random.Random, cues: Dict[Tuple[str, str, str], List[Row]]) -> List[dict]:
    """test_far: sense x type (P2, P3) x voice balanced, half of the cues held out.

    The cues are the test set's own cue recordings of the sense, voice and
    seen-ness (P and W items), distinct within a sense and voice: they share
    its audio files.
    """
    out = []
    for sense in TOPICS:
        chosen = {(voice, seen): rng.sample(cues[(sense, voice, seen)], len(FAR_COUNTS))
                  for voice in VOICES for seen in ("yes", "no")}
        for number, (kind, count) in enumerate(FAR_COUNTS.items()):
            for index in range(count):
                voice = VOICES[index % len(VOICES)]
                seen = "no" if (index // len(VOICES)) % 2 == 1 else "yes"
                out.append(dict(kind=kind, voice=voice, cue=chosen[(voice, seen)][number],
                                fillers=rng.sample(FILLERS, FAR_GAP[kind]),
                                carrier=rng.choice(CARRIERS).format(w=sense),
                                word=sense, alternative=other_sense(sense), cue_seen=seen))
    return out


def entity_cue_pool(kind: str, held_out: bool) -> List[str]:
    """Cue sentences of an entity type, built like :func:`cue_pool`."""
    words = ENTITY_TOPICS[kind]
    seen_words = set(words[:-HELD_OUT])
    return [frame.format(a=a, b=b) for a, b in combinations(words, 2)
            if held_out != ({a, b} <= seen_words) for frame in CUE_FRAMES]


def entity_items(split: str, rng: random.Random) -> List[dict]:
    """Entity items of a ner_* split: type x voice x name balanced; ner_test holds out half."""
    out = []
    for pair, names in ENTITY_NAMES.items():
        for kind in pair:
            other = pair[1] if kind == pair[0] else pair[0]
            seen_cues, unseen_cues = entity_cue_pool(kind, False), entity_cue_pool(kind, True)
            spoken = {voice: [(text, rng.choice(SPEEDS))
                              for text in rng.sample(seen_cues, NER_TRAIN_CUES)]
                      for voice in VOICES} if split == "ner_train" else {}
            for index in range(ENTITY_COUNTS[split]):
                voice = VOICES[index % len(VOICES)]
                block = index // len(VOICES)
                unseen = split == "ner_test" and block % 2 == 1
                if spoken:
                    cue = spoken[voice][block % NER_TRAIN_CUES]
                else:
                    cue = (rng.choice(unseen_cues if unseen else seen_cues),)
                name = names[block % len(names)]
                carrier = rng.choice(ENTITY_CARRIERS).format(
                    w=name if kind == NO_ENTITY else tag(kind, name))
                out.append(dict(kind="P", voice=voice, cue=cue, fillers=[], carrier=carrier,
                                word=name, alternative=other, cue_seen="no" if unseen else "yes"))
    return out


def added_sessions(split: str, rng: random.Random,
                   cues: Dict[Tuple[str, str, str], List[Row]]) -> List[Tuple[str, List[Row]]]:
    """(voice, rows) of every session of an added split, in a shuffled order.

    A test_far session is an opener and six items (cue, fillers, carrier); an
    entity session is six items (cue, carrier). A cue row that comes with its
    pace carries it as a seventh field.
    """
    split_items = far_items(rng, cues) if split == "test_far" else entity_items(split, rng)
    by_voice: Dict[str, List[dict]] = {voice: [] for voice in VOICES}
    for item in split_items:
        by_voice[item["voice"]].append(item)
    out = []
    for voice, voice_items in by_voice.items():
        rng.shuffle(voice_items)
        for start in range(0, len(voice_items), ITEMS_PER_SESSION):
            rows = [(*opener(rng), "-", "-", "-", "-")] if split == "test_far" else []
            for item in voice_items[start:start + ITEMS_PER_SESSION]:
                text, *speed = item["cue"]
                rows.append((text, "Neutral", "cue", "-", "-", "-", *speed))
                rows += [(filler, "Neutral", "filler", "-", "-", "-") for filler in item["fillers"]]
                rows.append((item["carrier"], "Neutral", item["kind"], item["word"],
                             item["alternative"], item["cue_seen"]))
            out.append((voice, rows))
    rng.shuffle(out)
    return out


# ---- Distill-only topic words: added after the splits above, from a seed of their own ----
DISTILL_SEED = 20261206
# sense -> three topic words that occur only in topic sessions of that sense (training
# sentences with transcripts, and the test set's topic sessions) and in the test set's
# S carriers: never in a cue, a W carrier or a training utterance with a homophone item,
# and none of them holds either spelling of any pair. Chosen by check_distill_words.py:
# the teacher of their training topic sentences (the embedded LLM title of the previous
# sentence, a topic sentence of the same sense) lies nearest its own sense's cue centroid.
DISTILL_TOPICS: Dict[str, List[str]] = {
    "knight": ["fortress", "tournament", "crown"],
    "night": ["candle", "evening", "bedtime"],
    "flour": ["pastry", "cake", "yeast"],
    "flower": ["daisy", "lily", "pollen"],
    "pear": ["lemon", "mango", "banana"],
    "pair": ["trousers", "jeans", "scarf"],
    "hare": ["squirrel", "forest", "deer"],
    "hair": ["wig", "razor", "mirror"],
    "sail": ["wind", "ship", "island"],
    "sale": ["coupon", "market", "refund"],
    "tail": ["bone", "hamster", "kennel"],
    "tale": ["novel", "library", "page"],
}
# a topic sentence names two of the sense's words, or one
DISTILL_FRAMES = CUE_FRAMES + ["we saw the {a} again", "she liked the {a}"]
# topic sessions per sense (one voice each, voices in turn) and their length
DISTILL_TOPIC_SESSIONS = {"train": 4, "test": 1}
DISTILL_SESSION_LENGTH = 6
# S items per sense (a multiple of the number of voices), in sessions of six
# (neutral sentence, S carrier) pairs
S_PER_SENSE = 16


def distill_sentence(rng: random.Random, sense: str) -> str:
    frame = rng.choice(DISTILL_FRAMES)
    a, b = rng.sample(DISTILL_TOPICS[sense], 2)
    return frame.format(a=a, b=b)


def distill_sessions(split: str, rng: random.Random) -> List[Tuple[str, List[Row]]]:
    """(voice, rows) of the distill-only sessions of a split, in a shuffled order.

    Topic sessions (type ``topic``, ``word`` = the sense): consecutive sentences of
    one sense, so each sentence's previous one carries the sense and its own audio
    holds the words. The test set also gets S items: a carrier naming the homophone
    and one distill-only word of its sense (type ``S``), after a neutral sentence
    (a filler), six such pairs a session, every sense with as many items per voice
    and with its words in turn.
    """
    out = []
    for number, sense in enumerate(TOPICS):
        for index in range(DISTILL_TOPIC_SESSIONS[split]):
            voice = VOICES[(index + number) % len(VOICES)]
            out.append((voice, [(distill_sentence(rng, sense), "Neutral", "topic", sense, "-", "-")
                                for _ in range(DISTILL_SESSION_LENGTH)]))
    if split == "test":
        by_voice: Dict[str, List[Row]] = {voice: [] for voice in VOICES}
        for sense in TOPICS:
            for index in range(S_PER_SENSE):
                word = DISTILL_TOPICS[sense][index % len(DISTILL_TOPICS[sense])]
                carrier = rng.choice(TOPIC_CARRIERS).format(w=sense, t=word)
                by_voice[VOICES[index % len(VOICES)]].append(
                    (carrier, "Neutral", "S", sense, other_sense(sense), "-"))
        for voice, items in by_voice.items():
            rng.shuffle(items)
            for start in range(0, len(items), ITEMS_PER_SESSION):
                rows: List[Row] = []
                for item in items[start:start + ITEMS_PER_SESSION]:
                    rows += [(rng.choice(FILLERS), "Neutral", "-", "-", "-", "-"), item]
                out.append((voice, rows))
    rng.shuffle(out)
    return out


def seen_label(cue: str) -> str:
    """What of a cue training saw: ``yes`` (both topic words), ``part`` (one of its words
    is held out of training) or ``no`` (both are)."""
    held = {w for words in (*TOPICS.values(), *ENTITY_TOPICS.values()) for w in words[-HELD_OUT:]}
    named = set(cue.split()) & {w for words in (*TOPICS.values(), *ENTITY_TOPICS.values())
                                for w in words}
    return "yes" if not named & held else "part" if named - held else "no"


def print_session(number: int, voice: str, split: str, rows: List[Row],
                  rng: random.Random) -> List[Tuple[str, str, Row]]:
    """Print one session (ids ``<speaker>-<number>-<NNNN>``); (voice, speed, row) of each line.

    A row's pace is its seventh field, or else drawn at random. An item whose cue
    was drawn from the held-out cues is labelled by what its cue holds
    (:func:`seen_label`): most of those cues pair a held-out word with a seen one.
    """
    speaker = 100 + VOICES.index(voice)
    printed = []
    cue = ""
    for position, row in enumerate(rows):
        text, sentiment, kind, word, alternative, seen = row[:6]
        if kind == "cue":
            cue = text
        elif seen == "no":
            seen = seen_label(cue)
        utt = f"{speaker}-{number}-{position:04d}"
        speed = row[6] if len(row) > 6 else rng.choice(SPEEDS)
        print(f"{utt}\t{voice}\t{speed}\t{split}\t{sentiment}\t{text}\t{kind}\t{word}"
              f"\t{alternative}\t{seen}")
        printed.append((voice, speed, row))
    return printed


def main() -> None:
    rng = random.Random(20261126)
    print("utt_id\tvoice\tspeed\tsplit\tsentiment\ttext\ttype\tword\talternative\tcue_seen")
    number = 0
    test_rows: List[Tuple[str, str, Row]] = []
    for split in ("train", "dev", "test"):
        for voice, rows in sessions(split, rng):
            number += 1
            printed = print_session(number, voice, split, rows, rng)
            if split == "test":
                test_rows += printed
    # The splits added later come after, from a seed of their own: every row
    # above stays as it was (and so does its audio).
    rng = random.Random(ADDED_SEED)
    cues = test_cues(test_rows)
    for split in ADDED_SPLITS:
        for voice, rows in added_sessions(split, rng, cues):
            number += 1
            print_session(number, voice, split, rows, rng)
    # and so do the distill-only sessions, in the demo's train and test splits
    rng = random.Random(DISTILL_SEED)
    for split in ("train", "test"):
        for voice, rows in distill_sessions(split, rng):
            number += 1
            print_session(number, voice, split, rows, rng)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
