#!/usr/bin/env python3
"""Write the mini corpus text: sessions of coherent sentences with entities and sentiment.

Usage::

    python local/corpus/write_corpus.py > local/corpus/corpus.tsv

Each session tells one small story in six sentences. Sentences 2 and 4 carry a
homophone (knight/night, flour/flower, ...) in a frame that fits both
spellings ("everyone was talking about the knight"); the sentence just before
each decides the spelling ("a soldier in shining armour rode into the
village"). So the spelling is unknowable from the audio alone and knowable
from the previous sentence: what the context variants can learn and the
baseline cannot. The output is deterministic (fixed seed) and committed; the
audio is made from it by ``local/corpus/synthesize.sh``.

Columns (tab-separated): utt_id, voice, split, sentiment, tagged text,
context words. The tagged text marks entities as ``TYPE FILL <words> SEP``;
the plain transcript is the tagged text without the tags.
"""

import random
import sys

# sense -> (cue sentences that decide it, sentiment of each cue)
SENSES = {
    "knight": ["a soldier in shining armour rode into the village",
               "the castle museum showed an old sword and a shield",
               "the king gave a brave soldier a horse and a lance"],
    "night": ["the stars came out and the streets grew dark",
              "the moon rose slowly over the quiet town",
              "the lamps were lit and the children went to bed"],
    "flour": ["the baker needed more bread for the market",
              "she was mixing dough for a birthday cake",
              "the recipe asked for sugar butter and eggs"],
    "flower": ["the garden was full of roses and tulips",
               "she planted seeds in the spring garden",
               "the bees moved from one bright blossom to the next"],
    "pear": ["the fruit stall sold apples and plums",
             "the orchard trees were heavy with ripe fruit",
             "he wanted something sweet and juicy to eat"],
    "pair": ["he needed new shoes for the wedding",
             "the gloves came in a small box of two",
             "she bought matching socks at the market"],
    "hare": ["a wild animal ran across the open field",
             "the fox chased something fast through the grass",
             "long ears appeared above the tall meadow grass"],
    "hair": ["the barber took out his scissors and comb",
             "she washed and brushed it before the party",
             "the wind blew it all over her face"],
    "sail": ["the boat left the harbour in a strong wind",
             "the sailors pulled the ropes on the mast",
             "the little yacht raced across the bay"],
    "sale": ["the shop cut all its prices by half",
             "customers queued at the store before it opened",
             "everything in the window was suddenly cheap"],
    "tail": ["the dog jumped happily at the door",
             "the cat sat by the fire and watched the mice",
             "the puppy ran in circles in the yard"],
    "tale": ["grandmother opened the old story book",
             "the children sat down to hear a story",
             "the writer read aloud from his new book"],
    "peace": ["the two countries signed an agreement to end the war",
              "the soldiers finally went home after the long conflict",
              "the leaders shook hands after years of fighting"],
    "piece": ["he cut the cake into eight parts",
              "she broke the chocolate bar for the children",
              "the puzzle was missing just one part"],
    "son": ["the mother waited for her boy to come home from school",
            "the father taught his little boy to ride a bike",
            "the parents were proud of their young boy"],
    "sun": ["it was a hot and bright summer morning",
            "the sky was clear and blue over the beach",
            "the day grew warmer and the shadows grew short"],
}
PAIRS = [("knight", "night"), ("flour", "flower"), ("pear", "pair"), ("hare", "hair"),
         ("sail", "sale"), ("tail", "tale"), ("peace", "piece"), ("son", "sun")]
# Frames that fit both spellings of every pair (neutral sentiment).
FRAMES = ["everyone was talking about the {w}",
          "nobody could stop thinking about the {w}",
          "{p} looked at the {w} for a long time",
          "that was when {p} noticed the {w}"]

PEOPLE = ["anna", "peter", "maria", "john", "sofia", "david", "laura", "tom"]
PLACES = ["paris", "london", "berlin", "dublin", "madrid", "vienna"]
DAYS = ["monday", "friday", "sunday", "last week", "in june", "today"]
ORGS = ["the council", "the museum", "the school", "the city bank"]
NORPS = ["french", "german", "irish", "spanish"]
LAWS = ["the water act", "the farm law", "the trade act"]
NUMBERS = ["three", "five", "twelve", "twenty", "two hundred"]


def tag(kind: str, words: str) -> str:
    return f"{kind} FILL {words} SEP"


def openers(rng):
    """Story openers with entities: (tagged text, sentiment)."""
    p, q = rng.sample(PEOPLE, 2)
    return rng.choice([
        (f"{tag('PERSON', p)} travelled to {tag('PLACE', rng.choice(PLACES))} on "
         f"{tag('WHEN', rng.choice(DAYS))}", "Neutral"),
        (f"{tag('PERSON', p)} and {tag('PERSON', q)} met {tag('NORP', rng.choice(NORPS))} "
         f"friends in {tag('PLACE', rng.choice(PLACES))}", "Positive"),
        (f"{tag('ORG', rng.choice(ORGS))} invited {tag('QUANT', rng.choice(NUMBERS))} guests "
         f"on {tag('WHEN', rng.choice(DAYS))}", "Positive"),
        (f"{tag('PERSON', p)} complained that {tag('LAW', rng.choice(LAWS))} was unfair",
         "Negative"),
    ])


CLOSERS = [("it was a wonderful day for everyone", "Positive"),
           ("they were very happy with how it went", "Positive"),
           ("sadly the weather turned cold and grey", "Negative"),
           ("the evening ended with a long argument", "Negative"),
           ("then they all went home", "Neutral"),
           ("nobody said anything for a while", "Neutral")]
CUE_SENTIMENT = "Neutral"


def session(rng, first, second):
    """Six sentences: opener, cue, carrier, cue, carrier, closer."""
    rows = [(*openers(rng), "")]
    for sense in (first, second):
        person = rng.choice(PEOPLE)
        rows.append((rng.choice(SENSES[sense]), CUE_SENTIMENT, ""))
        frame = rng.choice(FRAMES)
        text = frame.format(w=sense, p=tag("PERSON", person))
        rows.append((text, "Neutral", sense))
    rows.append((*rng.choice(CLOSERS), ""))
    return rows


def main() -> None:
    rng = random.Random(20261125)
    voices = ["en-us", "en-gb", "en-gb-x-rp", "en-us+f3"]
    # Every sense appears equally often, in both slots, and with each other sense.
    senses = [s for pair in PAIRS for s in pair]
    plan = []
    for round_ in range(3):
        order = senses[:]
        rng.shuffle(order)
        plan += [(order[i], order[(i + 5 + round_) % len(order)]) for i in range(len(order))]
    splits = ["train"] * 40 + ["dev"] * 4 + ["test"] * 4
    print("utt_id\tvoice\tsplit\tsentiment\ttext\tcontext_words")
    for index, (first, second) in enumerate(plan):
        voice_index = index % len(voices)
        speaker = 100 + voice_index
        for position, (text, sentiment, words) in enumerate(session(rng, first, second)):
            utt = f"{speaker}-{index + 1}-{position:04d}"
            print(f"{utt}\t{voices[voice_index]}\t{splits[index]}\t{sentiment}\t{text}\t{words}")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
