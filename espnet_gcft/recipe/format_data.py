"""Stage 2: check and format a Kaldi data dir's audio into ``dump/raw/<set>``.

Audio that is already mono at the target rate, with no ``segments``, is
referenced where it is (after its header is read); anything else (segments,
another rate, several channels) is written as 16-bit FLAC under
``<out_dir>/data``. A missing or unreadable file stops with the utterance id.
"""

from concurrent.futures import ProcessPoolExecutor
import os
from pathlib import Path
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_table, utterance_ids, write_table_atomic

# Files copied unchanged when present (a set without references has no text
# and transcript).
COPIED = ("text", "transcript", "utt2spk", "utt2prev", "homophones", "utt2sentiment", "utt2type",
          "distill_topics")


class FormatError(InputError, RuntimeError):
    """Bad input audio or data dir; names the utterance and the file."""


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    factor = gcd(rate, target)
    return resample_poly(audio, target // factor, rate // factor).astype(np.float32)


def _format_one(job: Tuple[str, str, Optional[Tuple[float, float]], int, str]) -> Tuple[str, str, int]:
    """Check (and if needed convert) one utterance; return (utt, path, samples)."""
    utt, path, segment, target, out_dir = job
    if path.endswith("|"):
        raise FormatError(f"utterance {utt}: piped wav.scp entries are not supported: {path}")
    if not os.path.isfile(path):
        raise FormatError(f"utterance {utt}: audio file {path} does not exist")
    try:
        info = soundfile.info(path)
    except RuntimeError as error:
        raise FormatError(f"utterance {utt}: cannot read {path}: {error}") from None
    if segment is None and info.samplerate == target and info.channels == 1:
        return utt, os.path.abspath(path), info.frames
    start, end = (0, None) if segment is None else (
        int(segment[0] * info.samplerate), int(segment[1] * info.samplerate))
    audio, rate = soundfile.read(path, start=start, stop=end, dtype="float32", always_2d=True)
    if audio.shape[0] == 0:
        raise FormatError(f"utterance {utt}: empty audio in {path} (segment {segment})")
    audio = audio.mean(axis=1)
    if rate != target:
        audio = _resample(audio, rate, target)
    out = Path(out_dir) / "data" / f"{utt}.flac"
    soundfile.write(out, audio, target, subtype="PCM_16")
    return utt, str(out.resolve()), len(audio)


def format_data(data_dir: Path, out_dir: Path, fs: int = 16000, nj: int = 1) -> int:
    """Write ``out_dir`` (wav.scp, utt2num_samples, spk2utt and the copied files)."""
    _, utts = utterance_ids(data_dir)
    recordings = {fields[0]: " ".join(fields[1:])
                  for _, fields in read_table(data_dir / "wav.scp", min_fields=2)}
    segments: Dict[str, Tuple[str, Tuple[float, float]]] = {}
    if (data_dir / "segments").is_file():
        for lineno, fields in read_table(data_dir / "segments", min_fields=4, max_fields=4):
            try:
                segments[fields[0]] = (fields[1], (float(fields[2]), float(fields[3])))
            except ValueError:
                raise FormatError(f"{data_dir}/segments:{lineno}: times must be numbers") from None
    jobs: List[tuple] = []
    for utt in utts:
        if segments:
            if utt not in segments:
                raise FormatError(f"utterance {utt} of {data_dir} has no entry in segments")
            recording, times = segments[utt]
        else:
            recording, times = utt, None
        if recording not in recordings:
            raise FormatError(f"utterance {utt}: recording {recording} is not in {data_dir}/wav.scp")
        jobs.append((utt, recordings[recording], times, fs, str(out_dir)))
    if out_dir.exists():
        shutil.rmtree(out_dir / "data", ignore_errors=True)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    if nj > 1:
        with ProcessPoolExecutor(nj) as pool:
            results = list(pool.map(_format_one, jobs, chunksize=16))
    else:
        results = [_format_one(job) for job in jobs]
    write_table_atomic(out_dir / "wav.scp", ((utt, path) for utt, path, _ in results))
    write_table_atomic(out_dir / "utt2num_samples", ((utt, str(n)) for utt, _, n in results))
    for name in COPIED:
        if (data_dir / name).is_file():
            shutil.copyfile(data_dir / name, out_dir / name)
        elif (out_dir / name).is_file():
            (out_dir / name).unlink()  # gone from the data dir (e.g. a set that lost its text)
    speakers: Dict[str, List[str]] = {}
    for _, fields in read_table(out_dir / "utt2spk", min_fields=2, max_fields=2):
        speakers.setdefault(fields[1], []).append(fields[0])
    write_table_atomic(out_dir / "spk2utt", ((s, " ".join(u)) for s, u in speakers.items()))
    return len(results)
