"""Stage 7: reference and hypothesis trn files of a decode."""

from pathlib import Path
from typing import Dict, List

from espnet_gcft.fileio import read_table, read_text, utterance_ids, write_table_atomic
from espnet_gcft.scoring.trn import ScoringError, write_trn


def make_trn(data_dir: Path, decode_dirs: List[Path], out_dir: Path) -> int:
    """Merge the decode dirs' ``text`` and write ``text``, ``ref.trn``, ``hyp.trn``.

    A data dir without ``text`` (a blind test set) gets ``text`` and
    ``hyp.trn`` only, in the order of its ``segments`` or ``wav.scp``.

    Raises:
        ScoringError: an utterance of the data dir that no decode dir has, or
            one decoded twice, naming it.
    """
    source, utts = utterance_ids(data_dir)
    refs = read_text(source) if source.name == "text" else None
    speakers = {f[0]: f[1] for _, f in read_table(data_dir / "utt2spk", min_fields=2, max_fields=2)}
    hyps: Dict[str, str] = {}
    for decode_dir in decode_dirs:
        for utt, text in read_text(decode_dir / "text").items():
            if utt in hyps:
                raise ScoringError(f"utterance {utt} was decoded twice ({decode_dir})")
            hyps[utt] = text
    missing = [u for u in utts if u not in hyps]
    if missing:
        raise ScoringError(f"{len(missing)} utterance(s) of {source} not decoded, e.g. {missing[0]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table_atomic(out_dir / "text", ((u, hyps[u]) for u in utts))
    if refs is not None:
        write_trn(out_dir / "ref.trn", ((u, speakers.get(u, u), refs[u]) for u in utts))
    write_trn(out_dir / "hyp.trn", ((u, speakers.get(u, u), hyps[u]) for u in utts))
    return len(utts)
