"""Session history (utt2prev) for every order, and its errors."""

from pathlib import Path

import pytest

from espnet_gcft.context.history import (
    HistoryError,
    build_utt2prev,
    previous_chain,
    previous_texts,
    read_utt2prev,
)
from espnet_gcft.fileio import TableError
from gcft_helpers import run_cli


def _data_dir(tmp_path: Path, utts, extra=None) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("".join(f"{u} text of {u}\n" for u in utts))
    for name, content in (extra or {}).items():
        (data / name).write_text(content)
    return data


def test_librispeech_order_is_chapter_then_index(tmp_path):
    # text order is not session order
    data = _data_dir(tmp_path, ["84-121-0002", "84-121-0000", "84-122-0000", "84-121-0010"])
    assert build_utt2prev(data, "librispeech") == {
        "84-121-0002": "84-121-0000",
        "84-121-0000": "-",
        "84-122-0000": "-",
        "84-121-0010": "84-121-0002",
    }


def test_voxpopuli_order_is_time_then_index(tmp_path):
    s = "20090204-0900-PLENARY-3-en"
    utts = [f"{s}_20090204-09:07:32_17", f"{s}_20090204-09:07:32_3", f"{s}_20090204-09:05:00_40",
            "20100101-0900-PLENARY-1-en_20100101-10:00:00_0"]
    utt2prev = build_utt2prev(_data_dir(tmp_path, utts), "voxpopuli")
    assert utt2prev[utts[2]] == "-"
    assert utt2prev[utts[1]] == utts[2]
    assert utt2prev[utts[0]] == utts[1]
    assert utt2prev[utts[3]] == "-"


def test_segments_order_is_start_time(tmp_path):
    segments = "b recA 5.0 7.0\na recA 0.5 2.0\nc recB 1.0 2.0\nd recA 10.0 11.0\n"
    data = _data_dir(tmp_path, ["a", "b", "c", "d"], {"segments": segments})
    assert build_utt2prev(data, "segments") == {"a": "-", "b": "a", "c": "-", "d": "b"}


def test_file_order(tmp_path):
    data = _data_dir(tmp_path, ["x", "y", "z"])
    table = tmp_path / "utt2session"
    table.write_text("x s1 2\ny s1 1\nz s2 0\n")
    assert build_utt2prev(data, "file", table) == {"x": "y", "y": "-", "z": "-"}


def test_bad_id_names_id_line_and_form(tmp_path):
    data = _data_dir(tmp_path, ["84-121-0000", "not_a_librispeech_id"])
    with pytest.raises(HistoryError, match=r"text:2: .*not_a_librispeech_id.*<speaker>-<chapter>-<NNNN>"):
        build_utt2prev(data, "librispeech")


def test_duplicate_id_names_both_lines(tmp_path):
    data = _data_dir(tmp_path, ["84-121-0000", "84-121-0001", "84-121-0000"])
    with pytest.raises(TableError, match=r"84-121-0000 appears on line 1 and line 3"):
        build_utt2prev(data, "librispeech")


def test_shared_position_names_both_utterances(tmp_path):
    data = _data_dir(tmp_path, ["a", "b"], {"segments": "a rec 1.0 2.0\nb rec 1.0 2.0\n"})
    with pytest.raises(HistoryError, match=r"a and b share position"):
        build_utt2prev(data, "segments")


def test_missing_segment_is_named(tmp_path):
    data = _data_dir(tmp_path, ["a", "b"], {"segments": "a rec 1.0 2.0\n"})
    with pytest.raises(HistoryError, match=r"segments: no entry .* e\.g\. b"):
        build_utt2prev(data, "segments")


def test_num_prev_joins_oldest_first():
    utt2prev = {"a": "-", "b": "a", "c": "b", "d": "c"}
    texts = {"a": "one", "b": "two", "c": "three", "d": "four"}
    assert previous_chain("d", utt2prev, 2) == ["b", "c"]
    assert previous_texts(texts, utt2prev, 1) == {"a": "", "b": "one", "c": "two", "d": "three"}
    assert previous_texts(texts, utt2prev, 3)["d"] == "one two three"
    assert previous_texts(texts, utt2prev, 3)["b"] == "one"


def test_cli_writes_every_utterance_once(tmp_path):
    data = _data_dir(tmp_path, ["1-2-0001", "1-2-0000", "3-4-0000"])
    run_cli("espnet_gcft.bin.make_utt2prev", "--data_dir", data, "--order", "librispeech")
    lines = (data / "utt2prev").read_text().splitlines()
    assert lines == ["1-2-0001 1-2-0000", "1-2-0000 -", "3-4-0000 -"]
    assert read_utt2prev(data / "utt2prev")["1-2-0001"] == "1-2-0000"


def test_cli_error_is_one_clear_line(tmp_path):
    data = _data_dir(tmp_path, ["bad-id"])
    proc = run_cli("espnet_gcft.bin.make_utt2prev", "--data_dir", data, "--order", "voxpopuli",
                   check=False)
    assert proc.returncode == 1
    assert "make_utt2prev: error:" in proc.stderr and "bad-id" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (data / "utt2prev").exists()


def test_rewriting_the_same_utt2prev_keeps_its_time_stamp(tmp_path):
    """A rerun of stage 1 must not make every later stage look out of date."""
    import os

    from espnet_gcft.context.history import write_utt2prev

    path = write_utt2prev(tmp_path, {"1-2-0000": "-", "1-2-0001": "1-2-0000"})
    os.utime(path, (1_000_000, 1_000_000))
    write_utt2prev(tmp_path, {"1-2-0000": "-", "1-2-0001": "1-2-0000"})
    assert path.stat().st_mtime == 1_000_000
    write_utt2prev(tmp_path, {"1-2-0000": "-", "1-2-0001": "-"})
    assert path.stat().st_mtime != 1_000_000
    assert path.read_text() == "1-2-0000 -\n1-2-0001 -\n"
