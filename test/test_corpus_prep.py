"""Stage 1 of the corpus recipes on fixture trees in the official release layouts.

``local/data.sh --corpus_dir test/fixtures/<corpus>`` runs as a user runs it,
from a copy of the recipe; every line of the data dirs is compared with what
the release rows say (written out here by hand), and malformed releases must
stop with the file and line and leave the data dirs as they were. The mini
corpus's data dirs are checked against its corpus.tsv: the demo's sets hold
only the demo's rows, test_far's cues lie 2 or 3 utterances back, and the
NER sets add entity sessions that only the previous sentence decides.
"""

import csv
import importlib.util
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
from typing import Dict, List

import pytest

from espnet_gcft.recipe.corpora import CorpusError
from espnet_gcft.recipe.corpora.slue import clean_text, parse_ner_cell, tag_entities
from espnet_gcft.scoring.homophones import ENTITY_LABELS, read_homophones, swap_word
from gcft_helpers import RECIPE, ROOT, copy_recipe

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def data_sh(recipe: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(["local/data.sh", *args], cwd=recipe, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"local/data.sh {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def table(path: Path) -> Dict[str, str]:
    """``key -> rest of the line``; the keys must come in C-sorted order, once each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [line.split(maxsplit=1)[0] for line in lines]
    assert keys == sorted(keys, key=lambda k: k.encode()) and len(set(keys)) == len(keys), path
    return {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in lines}


@pytest.fixture(scope="module")
def recipes(tmp_path_factory) -> Dict[str, Path]:
    """The three corpus recipes in the repository layout (one copy per module)."""
    root = tmp_path_factory.mktemp("repo")
    return {name: copy_recipe(root, ROOT / "egs2" / name / "gcft1", quick=False)
            for name in ("slue-voxpopuli", "slue-voxceleb", "librilight")}


def fixture_copy(tmp_path: Path, corpus: str) -> Path:
    target = tmp_path / corpus
    shutil.copytree(FIXTURES / corpus, target)
    return target


VP = "20131007-0900-PLENARY-19-en_20131007-21:26:04_"
VP2 = "20131008-0900-PLENARY-4-en_20131008-09:15:22_"
VP_DEV = "20140115-0900-PLENARY-8-en_20140115-10:02:11_"
VP_TEST = "20140116-0900-PLENARY-2-en_20140116-15:40:09_"


def test_voxpopuli_data_dirs(recipes):
    recipe = recipes["slue-voxpopuli"]
    corpus = FIXTURES / "slue-voxpopuli"
    data_sh(recipe, "--corpus_dir", str(corpus))
    data = recipe / "data"
    assert table(data / "train" / "text") == {
        # four entities, tagged from the last offset backwards
        VP + "3": "the ORG FILL commission SEP met in PLACE FILL brussels SEP on WHEN FILL the fifth "
                  "of may SEP with QUANT FILL two hundred SEP delegates",
        VP + "4": "we thank the rapporteur for her work",  # NER cell None
        # EVENT is not one of SLUE's labels: dropped, the others kept
        VP + "5": "the olympic games in PLACE FILL london SEP cost QUANT FILL ten percent SEP more",
        VP + "7": "LAW FILL article twenty one SEP of the treaty applies here",
        VP2 + "0": "mister PERSON FILL schulz SEP the NORP FILL greek SEP people expect an answer",
        VP2 + "1": "this debate is closed",  # NER cell []
    }
    assert table(data / "train" / "transcript")[VP + "3"] == (
        "the commission met in brussels on the fifth of may with two hundred delegates")
    assert table(data / "train" / "utt2spk") == {
        VP + "3": "28248", VP + "4": "28248", VP + "5": "28248", VP + "7": "28248",
        VP2 + "0": VP2 + "0", VP2 + "1": VP2 + "1",  # speaker None: its own speaker
    }
    # index 6 is not in SLUE: index 7 follows the nearest earlier segment present
    assert table(data / "train" / "utt2prev") == {
        VP + "3": "-", VP + "4": VP + "3", VP + "5": VP + "4", VP + "7": VP + "5",
        VP2 + "0": "-", VP2 + "1": VP2 + "0",
    }
    assert table(data / "train" / "wav.scp") == {
        utt: str(corpus / "fine-tune" / f"{utt}.ogg")
        for utt in (VP + "3", VP + "4", VP + "5", VP + "7", VP2 + "0", VP2 + "1")}
    assert table(data / "devel" / "text")[VP_DEV + "0"] == (
        "ORG FILL the european parliament SEP voted at WHEN FILL noon SEP")
    assert table(data / "devel" / "utt2prev") == {
        VP_DEV + "0": "-", VP_DEV + "1": VP_DEV + "0", VP_DEV + "2": VP_DEV + "1"}
    # the blind test set: ids only, no references
    assert sorted(p.name for p in (data / "test").iterdir()) == [
        "spk2utt", "utt2prev", "utt2spk", "wav.scp"]
    assert table(data / "test" / "wav.scp") == {
        utt: str(corpus / "test" / f"{utt}.ogg") for utt in (VP_TEST + "0", VP_TEST + "1", VP_TEST + "3")}
    assert table(data / "test" / "utt2prev") == {
        VP_TEST + "0": "-", VP_TEST + "1": VP_TEST + "0", VP_TEST + "3": VP_TEST + "1"}
    assert not (data / "train" / "segments").exists()

    # --task asr: the transcript is the target; a rerun rewrites only what changed
    before = (data / "train" / "wav.scp").stat().st_mtime_ns
    data_sh(recipe, "--corpus_dir", str(corpus), "--task", "asr")
    assert (data / "train" / "text").read_text() == (data / "train" / "transcript").read_text()
    assert (data / "train" / "wav.scp").stat().st_mtime_ns == before


VC = "id10059_229vKIGbxrI_0000"
VC2 = "id10270_x6uYqmx_31k_0000"


def test_voxceleb_data_dirs(recipes):
    recipe = recipes["slue-voxceleb"]
    corpus = FIXTURES / "slue-voxceleb"
    proc = data_sh(recipe, "--corpus_dir", str(corpus))
    assert "left out 1 utterance(s) with a mixed sentiment" in proc.stderr
    data = recipe / "data"
    # the <mixed> clip 00005 is left out, as SLUE does
    assert table(data / "train" / "text") == {
        VC + "1": "Positive i loved working on that film",
        VC + "2": "Neutral it was shot in canada",
        VC + "4": "Negative the reviews were awful",
        VC2 + "1": "Neutral we start shooting next week",
        VC2 + "2": "Positive i am so excited about it",
    }
    assert table(data / "train" / "transcript")[VC + "1"] == "i loved working on that film"
    # each clip is cut from its own raw file by the release's start/end seconds
    assert table(data / "train" / "segments") == {
        VC + "1": f"{VC}1 0.32 1.41", VC + "2": f"{VC}2 0.10 1.05", VC + "4": f"{VC}4 0.45 1.52",
        VC2 + "1": f"{VC2}1 0.00 0.95", VC2 + "2": f"{VC2}2 0.27 1.33"}
    assert table(data / "train" / "wav.scp") == {
        u: str(corpus / "fine-tune_raw" / f"{u}.flac")
        for u in (VC + "1", VC + "2", VC + "4", VC2 + "1", VC2 + "2")}
    # an empty speaker_id: the speaker the clip id starts with
    assert set(table(data / "train" / "utt2spk").values()) == {"id10059", "id10270"}
    # sessions are videos (ids may hold "_"); clip 00003 is absent, 00004 follows 00002
    assert table(data / "train" / "utt2prev") == {
        VC + "1": "-", VC + "2": VC + "1", VC + "4": VC + "2", VC2 + "1": "-", VC2 + "2": VC2 + "1"}
    test = data / "test"
    assert not (test / "text").exists()
    assert table(test / "segments")["id10309_0cYFdtyWVds_00004"] == "id10309_0cYFdtyWVds_00004 0.35 1.25"
    assert list(table(test / "utt2prev").values()) == [
        "-", "id10309_0cYFdtyWVds_00001", "id10309_0cYFdtyWVds_00002"]


def test_librilight_data_dirs(recipes):
    recipe = recipes["librilight"]
    corpus = FIXTURES / "librilight"
    data_sh(recipe, "--corpus_dir", str(corpus))
    data = recipe / "data"
    assert sorted(p.name for p in data.iterdir()) == [
        "dev_clean", "dev_other", "test_clean", "test_other", "train_10h"]
    train = table(data / "train_10h" / "text")
    # all twelve 1 h parts (2 utterances each) and the two 9 h parts (3 + 2)
    assert len(train) == 12 * 2 + 5
    speakers = {utt.split("-")[0] for utt in train}
    assert speakers == {str(s) for s in range(101, 113)} | {"1088", "1089"}
    trans = {}
    for path in (corpus / "librispeech_finetuning").rglob("*.trans.txt"):
        for line in path.read_text().splitlines():
            utt, words = line.split(maxsplit=1)
            trans[utt] = words
    assert train == trans
    first = next(iter((corpus / "librispeech_finetuning" / "1h" / "0" / "clean").rglob("*.flac")))
    assert table(data / "train_10h" / "wav.scp")[first.stem] == str(first)
    assert table(data / "train_10h" / "utt2spk")["1088-134315-0003"] == "1088"
    prev = table(data / "train_10h" / "utt2prev")
    # 1088-134315 lacks 0002: 0003 follows 0001
    assert [prev[f"1088-134315-000{i}"] for i in (0, 1, 3)] == ["-", "1088-134315-0000", "1088-134315-0001"]
    assert prev["101-2101-0001"] == "101-2101-0000"
    assert sum(p == "-" for p in prev.values()) == 14  # one session per chapter
    assert table(data / "test_other" / "text")["1688-142285-0002"] == "THE OLD MAN WALKED SLOWLY ALONG"
    assert table(data / "dev_clean" / "utt2prev") == {
        "1272-128104-0000": "-", "1272-128104-0001": "1272-128104-0000",
        "1272-128104-0002": "1272-128104-0001"}


def replace_line(path: Path, lineno: int, edit) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[lineno - 1] = edit(lines[lineno - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("corruption, message", [
    ("columns", "slue-voxpopuli_fine-tune.tsv:3: expected 7 tab-separated columns, got 6"),
    ("ner_cell", "slue-voxpopuli_fine-tune.tsv:2: the NER cell is not a Python list"),
    ("ner_span", "slue-voxpopuli_fine-tune.tsv:5: utterance " + VP + "7: NER span [LAW, 0, 12]"),
    ("audio", "slue-voxpopuli_dev.tsv:3: utterance " + VP_DEV + "1: cannot read audio file"),
    ("missing_audio", "slue-voxpopuli_fine-tune.tsv:7: utterance " + VP2 + "1: audio file"),
])
def test_voxpopuli_bad_release_names_file_and_line(recipes, tmp_path, corruption, message):
    recipe = recipes["slue-voxpopuli"]
    data_sh(recipe, "--corpus_dir", str(FIXTURES / "slue-voxpopuli"))
    written = {p: p.read_bytes() for p in (recipe / "data").rglob("*") if p.is_file()}
    corpus = fixture_copy(tmp_path, "slue-voxpopuli")
    tsv = corpus / "slue-voxpopuli_fine-tune.tsv"
    if corruption == "columns":
        replace_line(tsv, 3, lambda line: line.rsplit("\t", 1)[0])
    elif corruption == "ner_cell":
        replace_line(tsv, 2, lambda line: line.rsplit("\t", 1)[0] + "\t[['ORG', 4, 10]")
    elif corruption == "ner_span":
        # "article twen": a span that ends inside a word
        replace_line(tsv, 5, lambda line: line.replace("[['LAW', 0, 18]]", "[['LAW', 0, 12]]"))
    elif corruption == "audio":
        (corpus / "dev" / f"{VP_DEV}1.ogg").write_bytes(b"OggS not really")
    else:
        (corpus / "fine-tune" / f"{VP2}1.ogg").unlink()
    proc = data_sh(recipe, "--corpus_dir", str(corpus), check=False)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    # nothing already written is touched
    assert {p: p.read_bytes() for p in (recipe / "data").rglob("*") if p.is_file()} == written


def test_voxceleb_bad_rows(recipes, tmp_path):
    recipe = recipes["slue-voxceleb"]
    corpus = fixture_copy(tmp_path, "slue-voxceleb")
    tsv = corpus / "slue-voxceleb_dev.tsv"
    replace_line(tsv, 3, lambda line: line.replace("Positive", "Happy"))
    proc = data_sh(recipe, "--corpus_dir", str(corpus), check=False)
    assert f"{tsv}:3: utterance id10300_Jm4rAw2ZsXk_00002: sentiment 'Happy'" in proc.stderr
    replace_line(tsv, 3, lambda line: line.replace("Happy", "Positive").replace("1.00", "9.00"))
    proc = data_sh(recipe, "--corpus_dir", str(corpus), check=False)
    assert f"{tsv}:3: utterance id10300_Jm4rAw2ZsXk_00002: segment 0.05-9.0 s is outside" in proc.stderr


def test_librilight_bad_trans_and_missing_part(recipes, tmp_path):
    recipe = recipes["librilight"]
    corpus = fixture_copy(tmp_path, "librilight")
    trans = corpus / "LibriSpeech" / "dev-other" / "116" / "288045" / "116-288045.trans.txt"
    replace_line(trans, 2, lambda line: "116-999-0001 WRONG CHAPTER")
    proc = data_sh(recipe, "--corpus_dir", str(corpus), check=False)
    assert f"{trans}:2: utterance id '116-999-0001' is not 116-288045-<NNNN>" in proc.stderr
    shutil.rmtree(corpus / "librispeech_finetuning" / "1h" / "4" / "other")
    proc = data_sh(recipe, "--corpus_dir", str(corpus), check=False)
    assert "librispeech_finetuning/1h/4/other is missing" in proc.stderr


@pytest.mark.parametrize("corpus, names", [
    ("slue-voxpopuli", ["slue-voxpopuli_v0.2_blind.zip"]),
    ("slue-voxceleb", ["slue-voxceleb_v0.2_blind.zip"]),
    ("librilight", ["librispeech_finetuning.tgz", "dev-clean.tar.gz", "test-other.tar.gz"]),
])
def test_missing_corpus_says_where_to_get_it(recipes, tmp_path, corpus, names):
    proc = data_sh(recipes[corpus], "--corpus_dir", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 1
    for name in names:
        assert name in proc.stderr
    assert "--download true" in proc.stderr
    assert not (tmp_path / "nowhere").exists()  # nothing fetched unless asked


def test_download_true_fetches_and_unpacks_the_release(recipes, tmp_path):
    """--download true with a mirror URL (file://): the SLUE zip layout, one top dir."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copytree(FIXTURES / "slue-voxceleb", tmp_path / "pack" / "slue-voxceleb")
    shutil.make_archive(str(mirror / "slue-voxceleb_v0.2_blind"), "zip", tmp_path / "pack")
    corpus = tmp_path / "corpora" / "slue-voxceleb"
    recipe = recipes["slue-voxceleb"]
    proc = data_sh(recipe, "--corpus_dir", str(corpus), "--download", "true",
                   "--slue_url", mirror.as_uri())
    assert (corpus / "slue-voxceleb_fine-tune.tsv").read_bytes() == (
        FIXTURES / "slue-voxceleb" / "slue-voxceleb_fine-tune.tsv").read_bytes()
    assert len(table(recipe / "data" / "train" / "text")) == 5
    # a second run finds the corpus and downloads nothing
    proc = data_sh(recipe, "--corpus_dir", str(corpus), "--download", "true",
                   "--slue_url", (tmp_path / "gone").as_uri())
    assert "downloading" not in proc.stdout + proc.stderr


def test_tag_entities_inserts_from_the_last_offset():
    text = "in paris on monday mister smith paid ten euros"
    spans: List = [["GPE", 3, 5], ["PERSON", 26, 5], ["DATE", 12, 6], ["MONEY", 37, 9]]
    assert tag_entities(text, spans, "u1", "f:1") == (
        "in PLACE FILL paris SEP on WHEN FILL monday SEP mister PERSON FILL smith SEP paid "
        "QUANT FILL ten euros SEP")
    # a possessive or punctuation right after the entity: tagged, kept apart
    assert tag_entities("europe's farmers, in paris.", [["GPE", 0, 6], ["GPE", 21, 5]], "u1", "f:1") == (
        "PLACE FILL europe SEP 's farmers, in PLACE FILL paris SEP .")
    assert clean_text("PLACE FILL europe SEP is <unk> ; really ?") == "PLACE FILL europe SEP is unknown really"
    with pytest.raises(CorpusError, match="f:1: utterance u1: NER spans at 3 and 5 overlap"):
        tag_entities(text, [["GPE", 3, 5], ["ORG", 5, 3]], "u1", "f:1")
    with pytest.raises(CorpusError, match="does not match"):
        tag_entities(text, [["GPE", 40, 10]], "u1", "f:1")  # past the end
    with pytest.raises(CorpusError, match="unknown NER label 'CITY'"):
        tag_entities(text, [["CITY", 3, 5]], "u1", "f:1")
    assert parse_ner_cell("None", "f:1") == [] and parse_ner_cell("[]", "f:1") == []
    with pytest.raises(CorpusError, match=r"f:2: NER entries are \[label, start, length\]"):
        parse_ner_cell("[['GPE', '3', 5]]", "f:2")


# ---- The mini corpus (egs2/mini_gcft): the demo's sets, test_far and the entity sets ----

MINI_CORPUS = RECIPE / "local" / "corpus"
BASE_SIZES = {"train": 1184, "dev": 312, "test": 728}  # the demo's first rows
# the distill-only sessions added last: train 4 topic sessions per sense; test one topic
# session per sense and 192 S items after a neutral sentence each
DISTILL_SIZES = {"train": 4 * 12 * 6, "test": 12 * 6 + 192 * 2}


def _write_corpus_module():
    spec = importlib.util.spec_from_file_location("write_corpus", MINI_CORPUS / "write_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WC = _write_corpus_module()


def corpus_rows(path: Path = MINI_CORPUS / "corpus.tsv") -> Dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        return {row["utt_id"]: row for row in csv.DictReader(f, delimiter="\t")}


def lines(path: Path) -> Dict[str, str]:
    """``key -> rest of the line`` of a data dir file (corpus order, keys once each)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(" ")
        assert key not in out, (path, key)
        out[key] = rest
    return out


def back(utt2prev: Dict[str, str], utt: str, steps: int) -> List[str]:
    """The ``steps`` utterances before ``utt``, nearest first (via utt2prev)."""
    chain = []
    for _ in range(steps):
        utt = utt2prev[utt]
        assert utt != "-"
        chain.append(utt)
    return chain


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    """The mini recipe after ``local/data.sh`` (task asr), with a copy of what it wrote."""
    recipe = copy_recipe(tmp_path_factory.mktemp("repo"), RECIPE, quick=False)
    data_sh(recipe)
    return recipe


def test_mini_corpus_is_what_write_corpus_writes_with_the_added_splits_last():
    written = subprocess.run([sys.executable, str(MINI_CORPUS / "write_corpus.py")],
                             capture_output=True, text=True, check=True).stdout
    assert written == (MINI_CORPUS / "corpus.tsv").read_text(encoding="utf-8")
    splits = [row["split"] for row in corpus_rows().values()]
    base, distill = sum(BASE_SIZES.values()), sum(DISTILL_SIZES.values())
    assert set(splits[:base]) == set(BASE_SIZES)
    assert set(splits[base:-distill]) == set(WC.ADDED_SPLITS)
    assert [splits[-distill:].count(s) for s in DISTILL_SIZES] == list(DISTILL_SIZES.values())


def test_mini_asr_sets_hold_only_the_demo_rows(mini):
    rows = corpus_rows()
    data = mini / "data"
    assert sorted(p.name for p in data.iterdir()) == ["dev", "test", "test_far", "train"]
    for dset, size in BASE_SIZES.items():
        text = lines(data / dset / "text")
        assert len(text) == size + DISTILL_SIZES.get(dset, 0) and {rows[u]["split"] for u in text} == {dset}
        items = [line.split() for line in lines(data / dset / "homophones").values()]
        assert {item[0] for item in items} <= {"P", "W", "C", "S"}
        types = lines(data / dset / "utt2type")
        assert list(types) == list(text) and all(types[u] == (rows[u]["type"].replace("-", "other"))
                                                 for u in text)
        assert not any(item[2] in ENTITY_LABELS or item[3] in ENTITY_LABELS for item in items)
        assert all(words == words.lower() for words in text.values())  # no entity tags (asr)


def test_mini_test_far_cue_lies_two_or_three_back(mini):
    rows = corpus_rows()
    data = mini / "data" / "test_far"
    utt2prev = lines(data / "utt2prev")
    text = lines(data / "text")
    assert {rows[u]["split"] for u in text} == {"test_far"}
    items = {u: line.split() for u, line in lines(data / "homophones").items()}
    counts: Dict[tuple, int] = {}
    for utt, (kind, position, word, alternative, seen) in items.items():
        steps = {"P2": 2, "P3": 3}[kind]
        assert text[utt].split()[int(position)] == word and alternative == WC.other_sense(word)
        chain = back(utt2prev, utt, steps)
        assert [rows[u]["type"] for u in chain] == ["filler"] * (steps - 1) + ["cue"]
        assert {text[u] for u in chain[:-1]} <= set(WC.FILLERS)
        cue = text[chain[-1]].split()
        # the cue is one of the sense's: held-out topic words exactly when cue_seen is not
        # yes (part: one of its two words, no: both)
        assert set(cue) & set(WC.TOPICS[word]) and not set(cue) & set(WC.TOPICS[alternative])
        assert bool(set(cue) & set(WC.TOPICS[word][-WC.HELD_OUT:])) == (seen != "yes")
        assert seen == WC.seen_label(" ".join(cue))
        key = (word, kind, rows[utt]["voice"], seen == "yes")
        counts[key] = counts.get(key, 0) + 1
    # every sense x type x voice x seen-ness equally often: 12 x 2 x 4 x 2 cells of one
    assert len(counts) == 12 * 2 * 4 * 2 and set(counts.values()) == {1}
    # sessions like the test set's: an opener, then items
    firsts = [u for u, p in utt2prev.items() if p == "-"]
    assert len(firsts) == 32 and all(rows[u]["type"] == "-" and "FILL" in rows[u]["text"]
                                     for u in firsts)


def test_distill_only_words_reach_no_spelling_label(mini):
    """The distill-only topic words occur in topic sessions of their sense (training
    sentences with transcripts) and in the test set's S carriers, and nowhere else: no
    cue, no W carrier, no training utterance with an item, no dev or far-cue row; none
    holds a spelling. Topic sessions are runs of one sense; S items follow a neutral
    sentence, name one distill-only word of their sense, and are balanced."""
    rows = corpus_rows()
    distill = {w: sense for sense, words in WC.DISTILL_TOPICS.items() for w in words}
    spellings = {w for pair in WC.PAIRS for w in pair}
    assert all(len(words) >= 3 for words in WC.DISTILL_TOPICS.values())
    assert not any(s in w for w in distill for s in spellings)
    assert not set(distill) & {w for words in WC.TOPICS.values() for w in words}
    for utt, row in rows.items():
        named = set(row["text"].split()) & set(distill)
        if not named:
            continue
        senses = {distill[w] for w in named}
        if row["type"] == "topic":
            assert senses == {row["word"]} and row["split"] in ("train", "test"), utt
        else:
            assert row["type"] == "S" and row["split"] == "test" and len(named) == 1, utt
            assert senses == {row["word"]}, utt
    data = mini / "data"
    for dset in ("train", "test"):
        utt2prev = lines(data / dset / "utt2prev")
        topics = lines(data / dset / "distill_topics")
        assert topics and all(rows[u]["type"] == "topic" and rows[u]["word"] == s for u, s in topics.items())
        for utt, sense in topics.items():  # a topic sentence's previous one: the same sense
            prev = utt2prev[utt]
            assert prev == "-" or topics[prev] == sense
        firsts = [u for u in topics if utt2prev[u] == "-"]
        per_sense = {s: sum(topics[u] == s for u in firsts) for s in WC.DISTILL_TOPICS}
        assert set(per_sense.values()) == {WC.DISTILL_TOPIC_SESSIONS[dset]}
    items = {u: line.split() for u, line in lines(data / "test" / "homophones").items()}
    s_items = {u: item for u, item in items.items() if item[0] == "S"}
    utt2prev = lines(data / "test" / "utt2prev")
    assert len(s_items) == 192
    counts: Dict[tuple, int] = {}
    for utt, (kind, position, word, alternative, seen) in s_items.items():
        assert rows[utt_prev := utt2prev[utt]]["text"] in WC.FILLERS, utt_prev
        counts[(word, rows[utt]["voice"])] = counts.get((word, rows[utt]["voice"]), 0) + 1
    assert len(counts) == 12 * 4 and set(counts.values()) == {4}
    index = lines_tab(MINI_CORPUS / "audio" / "index.tsv")
    check = lines_tab(MINI_CORPUS / "homophone_check.tsv")
    assert all(check.get(index[u]) == "identical" for u in s_items)


def test_homophone_check_covers_the_far_carriers():
    index = lines_tab(MINI_CORPUS / "audio" / "index.tsv")
    check = lines_tab(MINI_CORPUS / "homophone_check.tsv")
    carriers = {index[u] for u, row in corpus_rows().items() if row["type"] in ("P2", "P3")}
    assert carriers and all(check.get(name) == "identical" for name in carriers)


def lines_tab(path: Path) -> Dict[str, str]:
    return dict(line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())


def test_mini_ner_sets_add_the_entity_sessions_and_leave_the_others(mini):
    data = mini / "data"
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    data_sh(mini, "--task", "ner")
    assert {p: p.read_bytes() for p in before} == before  # data/train etc. as they were
    assert sorted(p.name for p in data.iterdir()) == [
        "dev", "dev_ner", "test", "test_far", "test_ner", "train", "train_ner"]
    rows = corpus_rows()
    entity_counts = {"train": 384, "dev": 48, "test": 96}
    for base, size in BASE_SIZES.items():
        size += DISTILL_SIZES.get(base, 0)
        dset = data / f"{base}_ner"
        text = lines(dset / "text")
        # the base set's rows first, then the entity sessions
        assert [rows[u]["split"] for u in text] == [base] * size + [f"ner_{base}"] * (
            len(text) - size)
        utt2prev = lines(dset / "utt2prev")
        transcript = lines(dset / "transcript")
        items = read_homophones(dset / "homophones")
        entity = {u: item for u, item in items.items() if item.is_entity}
        assert len(entity) == entity_counts[base]
        assert all(rows[u]["split"] == base for u in items if u not in entity)
        counts: Dict[tuple, int] = {}
        for utt, item in entity.items():
            name = transcript[utt].split()[item.position]
            assert rows[utt]["word"] == name and item.kind == "P"
            if item.word == "O":
                assert f"FILL {name}" not in text[utt]
            else:
                assert f"{item.word} FILL {name} SEP" in text[utt]
            # the forced choice's other reference: the same words with the other type
            swapped = swap_word(text[utt], item)
            assert swapped != text[utt]
            assert " ".join(w for w in swapped.split() if w.islower()) == transcript[utt]
            # the previous sentence is a cue of the right type, and it alone tells it
            (cue,) = back(utt2prev, utt, 1)
            assert rows[cue]["type"] == "cue"
            words = set(transcript[cue].split())
            assert words & set(WC.ENTITY_TOPICS[item.word])
            assert not words & set(WC.ENTITY_TOPICS[item.alternative])
            assert bool(words & set(WC.ENTITY_TOPICS[item.word][-WC.HELD_OUT:])) == (
                item.cue_seen != "yes")
            assert item.cue_seen == WC.seen_label(transcript[cue])
            key = (item.word, rows[utt]["voice"], name, item.cue_seen == "yes")
            counts[key] = counts.get(key, 0) + 1
        # every type x voice x name (x seen-ness in test) equally often
        cells = 4 * 4 * 3 * (2 if base == "test" else 1)
        assert len(counts) == cells and len(set(counts.values())) == 1
    # ner_test: 24 items per type, half of them with a cue never seen in training
    test_items = [line.split() for line in lines(data / "test_ner" / "homophones").values()]
    for kind in ("PERSON", "PLACE", "ORG", "O"):
        assert sum(i[2] == kind for i in test_items) == 24
        assert sum(i[2] == kind and i[4] != "yes" for i in test_items) == 12
    # the demo's items come along, scored as homophone items
    assert sum(i[2] not in ENTITY_LABELS for i in test_items) == 336 + 192


def _bad_corpus(tmp_path: Path, edit) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "audio").mkdir(parents=True)
    shutil.copy(MINI_CORPUS / "audio" / "index.tsv", corpus / "audio" / "index.tsv")
    text = (MINI_CORPUS / "corpus.tsv").read_text(encoding="utf-8").split("\n")
    lineno = next(i for i, line in enumerate(text, 1)
                  if "\tner_test\t" in line and "PERSON FILL" in line and "\tP\t" in line)
    text[lineno - 1] = edit(text[lineno - 1])
    (corpus / "corpus.tsv").write_text("\n".join(text), encoding="utf-8")
    return corpus, lineno


@pytest.mark.parametrize("edit, message", [
    # the name is tagged with its own alternative type
    (lambda line: line.replace("PERSON FILL", "PLACE FILL"), "is tagged PLACE, its alternative type"),
    # the name is not the first word of its entity
    (lambda line: line.replace("PERSON FILL", "PERSON FILL mister"), "is not the first word"),
    # the item's name is not in its carrier
    (lambda line: re.sub(r"\tP\t[a-z]+\t", "\tP\tlincoln\t", line), "must occur once"),
])
def test_mini_bad_entity_item_names_file_and_line(tmp_path, edit, message):
    corpus, lineno = _bad_corpus(tmp_path, edit)
    proc = subprocess.run([sys.executable, str(RECIPE / "local" / "data_prep.py"), "--corpus_dir",
                           str(corpus), "--task", "ner", "--out_dir", str(tmp_path / "data")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{corpus / 'corpus.tsv'}:{lineno}: utterance " in proc.stderr, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()
