"""Word error rate through NIST sclite when installed, else jiwer (same counts)."""

import logging
import math
from pathlib import Path
import re
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Tuple

from espnet_gcft.scoring.trn import PathLike, ScoringError, write_trn

logger = logging.getLogger(__name__)
# Debian's sctk package installs sclite off PATH.
SCLITE_LOCATIONS = ("/usr/lib/sctk/bin/sclite",)
_SUM = re.compile(
    r"^\s*\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|",
    re.MULTILINE,
)


def find_sclite(explicit: Optional[str] = None) -> Optional[str]:
    """Path of sclite: ``explicit``, then PATH, then Debian's location; None if absent."""
    if explicit:
        if not Path(explicit).is_file():
            raise ScoringError(f"--sclite {explicit}: no such file")
        return explicit
    found = shutil.which("sclite")
    if found:
        return found
    return next((p for p in SCLITE_LOCATIONS if Path(p).is_file()), None)


def _counts(words: int, sub: int, dele: int, ins: int, engine: str) -> Dict[str, float]:
    errors = sub + dele + ins
    return {
        "wer": round(100.0 * errors / words, 4) if words else 0.0,
        "n_ref_words": words,
        "substitutions": sub,
        "deletions": dele,
        "insertions": ins,
        "engine": engine,
    }


def sclite_counts(sclite: str, ref_trn: PathLike, hyp_trn: PathLike,
                  cwd: Optional[PathLike] = None) -> Tuple[Dict[str, float], str]:
    """Run ``sclite -r REF trn -h HYP trn -i rm -o all stdout`` (in ``cwd``, where
    relative paths are taken from); counts and the report."""
    command = [sclite, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm",
               "-o", "all", "stdout"]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    match = _SUM.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise ScoringError(
            f"sclite failed ({proc.returncode}) on {ref_trn} / {hyp_trn}: {proc.stderr[-500:]}"
        )
    _, words, _, sub, dele, ins, _, _ = map(int, match.groups())
    return _counts(words, sub, dele, ins, "sclite"), proc.stdout


def jiwer_counts(pairs: List[Tuple[str, str, str]]) -> Dict[str, float]:
    """Counts from jiwer; case-insensitive like sclite's default."""
    import jiwer

    nonempty = [(r.lower(), h.lower()) for _, r, h in pairs if r.strip()]
    words = sum(len(r.split()) for r, _ in nonempty)
    sub = dele = ins = 0
    if nonempty:
        out = jiwer.process_words([r for r, _ in nonempty], [h for _, h in nonempty])
        sub, dele, ins = out.substitutions, out.deletions, out.insertions
    # A hypothesis for an empty reference is all insertions.
    ins += sum(len(h.split()) for _, r, h in pairs if not r.strip())
    return _counts(words, sub, dele, ins, "jiwer")


def word_error_rate(
    pairs: List[Tuple[str, str, str]], sclite: Optional[str] = None, report_file: Optional[Path] = None
) -> Dict[str, float]:
    """WER of ``(id, ref, hyp)`` pairs, with sclite if given (report kept), else jiwer.

    The trn files given to sclite carry the ids as ``(id)``.
    """
    if sclite is None:
        return jiwer_counts(pairs)
    with tempfile.TemporaryDirectory() as tmp:
        ref, hyp = Path(tmp) / "ref.trn", Path(tmp) / "hyp.trn"
        write_trn(ref, [(utt, "x", r) for utt, r, _ in pairs])
        write_trn(hyp, [(utt, "x", h) for utt, _, h in pairs])
        # relative names: the report names its files, and a temporary dir's random
        # name would make two scorings of the same decode differ
        counts, report = sclite_counts(sclite, ref.name, hyp.name, cwd=tmp)
    if report_file is not None:
        report_file.write_text(report, encoding="utf-8")
    return counts


_MATCHED_PAIRS = re.compile(
    r"MTCH_PR_RESULTS .*\(mean:\s*(\S+)\) \(std dev:\s*(\S+)\) \(Z Stat:\s*(\S+)\)")


def matched_pairs_p(sclite: str, ref_trn: PathLike, first_hyp: PathLike,
                    second_hyp: PathLike) -> float:
    """Two-sided p-value of sclite's matched-pairs sentence-segment (word error) test.

    Both hypotheses are aligned by sclite (``-o sgml``), then ``sc_stats -t
    mapsswe`` (installed beside sclite) compares them segment by segment; its
    Z statistic gives the p-value under the normal approximation it uses.
    When every segment differs by the same amount (standard deviation 0),
    sc_stats reports Z = 0; a nonzero mean difference is then certain, p = 0.
    """
    if Path(first_hyp).read_bytes() == Path(second_hyp).read_bytes():
        return 1.0  # the same hypotheses (sc_stats crashes on two error-free copies)
    sc_stats = Path(sclite).with_name("sc_stats")
    if not sc_stats.is_file():
        raise ScoringError(f"{sc_stats}: sc_stats is not installed beside sclite")
    with tempfile.TemporaryDirectory() as tmp:
        sgml = []
        for name, hyp in (("first", first_hyp), ("second", second_hyp)):
            proc = subprocess.run([sclite, "-r", str(ref_trn), "trn", "-h", str(hyp), "trn", name,
                                   "-i", "rm", "-o", "sgml", "-O", tmp, "-n", name],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise ScoringError(f"sclite failed ({proc.returncode}) on {hyp}: {proc.stderr[-300:]}")
            sgml.append((Path(tmp) / f"{name}.sgml").read_text(encoding="utf-8"))
        proc = subprocess.run([str(sc_stats), "-p", "-t", "mapsswe", "-v", "-n", "pair", "-O", tmp],
                              input="".join(sgml), capture_output=True, text=True)
        report = Path(tmp) / "pair.stats.mapsswe"
        match = _MATCHED_PAIRS.search(report.read_text() if report.is_file() else "")
    if proc.returncode != 0 or match is None:
        raise ScoringError(f"sc_stats failed ({proc.returncode}) on {first_hyp} / {second_hyp}: "
                           f"{proc.stderr[-300:]}")
    mean, std, z = (float(value) for value in match.groups())
    if std == 0:
        return 1.0 if mean == 0 else 0.0
    return 1.0 if math.isnan(z) else math.erfc(abs(z) / math.sqrt(2))
