"""One input-error base class: the CLIs print it as one line naming the file, line or
utterance; anything else is a bug and keeps its traceback."""

import importlib
import inspect
import pkgutil

import pytest

import espnet_gcft
from espnet_gcft.bin.common import reported_errors
from espnet_gcft.errors import InputError, MissingInputError
from espnet_gcft.fileio import TableError, read_keys, read_text
from gcft_helpers import run_cli

# modules that import ESPnet or torch are left out of the scan: they are slow to import
LIGHT = ("espnet_gcft.context", "espnet_gcft.scoring", "espnet_gcft.recipe", "espnet_gcft.fileio")


def test_every_error_class_of_the_package_is_an_input_error():
    found = []
    for info in pkgutil.walk_packages(espnet_gcft.__path__, "espnet_gcft."):
        if not info.name.startswith(LIGHT) and info.name not in ("espnet_gcft.asr.context_data",
                                                                 "espnet_gcft.asr.model"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Exception) and cls.__module__ == info.name:
                found.append(cls)
                assert issubclass(cls, InputError), cls
    names = {cls.__name__ for cls in found}
    assert {"TableError", "HistoryError", "PromptError", "GenerationError", "ScoringError",
            "CorpusError", "ContextError", "ContextDataError"} <= names


def test_reported_errors_catches_input_errors_only(capsys):
    with pytest.raises(SystemExit) as exit_info:
        with reported_errors("prog"):
            raise TableError("data/x/text:3: expected 2 fields")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "prog: error: data/x/text:3: expected 2 fields\n"
    # a bug is not an input error, even a ValueError or a missing file
    for bug in (ValueError("bug"), FileNotFoundError("bug"), KeyError("bug")):
        with pytest.raises(type(bug)):
            with reported_errors("prog"):
                raise bug


def test_non_utf8_bytes_name_the_file_and_line(tmp_path):
    text = tmp_path / "text"
    text.write_bytes("a-1 fine\n".encode() + b"a-2 caf\xe9 latin-1\n")
    for read in (read_text, read_keys):
        with pytest.raises(TableError, match=rf"{text}:2: not UTF-8 \(byte 0xe9 at column 8\)"):
            read(text)


def test_a_missing_table_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match="no such file"):
        read_text(tmp_path / "nothing")


def test_make_utt2prev_on_a_non_utf8_data_dir_is_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_bytes(b"1-2-0000 hello\n1-2-0001 na\xefve\n")
    (data / "wav.scp").write_text("1-2-0000 a.wav\n1-2-0001 b.wav\n")
    proc = run_cli("espnet_gcft.bin.make_utt2prev", "--data_dir", data, "--order", "librispeech",
                   check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "UnicodeDecodeError" not in proc.stderr
    assert f"make_utt2prev: error: {data / 'text'}:2: not UTF-8" in proc.stderr
    assert not (data / "utt2prev").exists()


@pytest.mark.parametrize("mistake", ["missing_audio_list", "no_speech_entry", "missing_model"])
def test_gcft_inference_user_mistakes_are_one_line(mistake, tmp_path):
    wav_scp = tmp_path / "wav.scp"
    wav_scp.write_text("u1 a.wav\n")
    entry = {"missing_audio_list": f"{tmp_path / 'nothing.scp'},speech,sound",
             "no_speech_entry": f"{wav_scp},audio,sound",
             "missing_model": f"{wav_scp},speech,sound"}[mistake]
    proc = run_cli("espnet_gcft.bin.gcft_inference", "--model", tmp_path / "no_exp",
                   "--data_path_and_name_and_type", entry, "--output_dir", tmp_path / "out",
                   check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    expected = {"missing_audio_list": "nothing.scp (--data_path_and_name_and_type speech): no such file",
                "no_speech_entry": "needs a `speech` entry",
                "missing_model": "no_exp: neither a packed model nor an exp dir"}[mistake]
    assert "gcft_inference: error: " in proc.stderr and expected in proc.stderr


def test_a_checkpoint_save_that_fails_half_way_keeps_the_previous_checkpoint(tmp_path):
    """Training's torch.save (espnet_gcft.asr.compat.atomic_torch_saves, around every
    rank's main_worker): a save that fails (here: an object that cannot be pickled, as a
    full disk fails a write) leaves the previous checkpoint whole, readable by the group
    as open() would make it, and no temporary file; torch.save is the original after."""
    import os
    import stat
    import subprocess
    import sys

    code = f"""
import torch
from espnet_gcft.asr.compat import atomic_torch_saves
original = torch.save
path = {str(tmp_path / "checkpoint.pth")!r}
class Unpicklable:
    def __reduce__(self):
        raise OSError(28, "No space left on device")
with atomic_torch_saves():
    torch.save({{"epoch": 1, "w": torch.ones(1000)}}, path)
    try:
        torch.save({{"epoch": 2, "w": torch.zeros(1000000), "x": Unpicklable()}}, path)
    except OSError as error:
        print("failed:", error)
print("epoch", torch.load(path)["epoch"], "restored", torch.save is original)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["failed: [Errno 28] No space left on device",
                                        "epoch 1 restored True"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "checkpoint.pth").stat().st_mode) == 0o666 & ~umask
