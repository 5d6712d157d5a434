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
the test set has cues seen in training (``cue_seen=yes``) and cues seen only
in test (``cue_seen=no``). Every sense has the same number of items of each type
per voice in every split; dev and test are separate sessions. The output is
deterministic (fixed seed) and committed; ``synthesize.py`` makes the audio.

Columns (tab-separated): ``utt_id voice speed split sentiment text type word
alternative cue_seen``. ``text`` marks entities as ``TYPE FILL <words> SEP``; ``type``
is ``P``/``W``/``C`` for a homophone item, ``cue`` for a sentence that decides
the next item, ``topic`` for a topic-session sentence and ``-`` otherwise;
``word`` is the homophone as spelled in ``text`` and ``alternative`` its other
spelling (``-`` when not an item); ``cue_seen`` says whether the deciding
sentence occurs in training (``yes``/``no``, ``-`` when not P/W).
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


def main() -> None:
    rng = random.Random(20261126)
    print("utt_id\tvoice\tspeed\tsplit\tsentiment\ttext\ttype\tword\talternative\tcue_seen")
    number = 0
    for split in ("train", "dev", "test"):
        for voice, rows in sessions(split, rng):
            number += 1
            speaker = 100 + VOICES.index(voice)
            for position, (text, sentiment, kind, word, alternative, seen) in enumerate(rows):
                utt = f"{speaker}-{number}-{position:04d}"
                speed = rng.choice(SPEEDS)
                print(f"{utt}\t{voice}\t{speed}\t{split}\t{sentiment}\t{text}\t{kind}\t{word}"
                      f"\t{alternative}\t{seen}")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
