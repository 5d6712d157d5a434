"""Text encoder -> context embeddings in kaldiio ark/scp.

Each utterance's text becomes a float32 matrix ``(L, C)``: ``L = 1`` for
``cls`` or ``mean`` pooling, ``L`` = the token count for ``sequence``, and
``L = 0`` for an empty text (no encoder call). Output in ``out_dir``:
``emb_<pooling>.ark`` / ``.scp`` and ``meta.json`` (encoder, pooling, dim,
counts, source text hash).

Long runs resume: matrices are appended to ``emb_<pooling>.partial.{ark,scp}``
after every batch; a rerun on the same text and encoder skips what is there and
the files are renamed into place at the end.
"""

from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import time
from typing import Dict, List

import kaldiio
import numpy as np
from tqdm import tqdm

from espnet_gcft.context.models import resolve_model
from espnet_gcft.errors import InputError
from espnet_gcft.fileio import key_mismatch, read_table, write_text_atomic

logger = logging.getLogger(__name__)
POOLINGS = ("cls", "mean", "sequence")


class EmbeddingError(InputError, RuntimeError):
    """Bad embedding input or output (names the utterance)."""


class TextEncoder:
    """A BERT-like encoder from transformers, pooled per ``POOLINGS``.

    Args:
        name: ``all-minilm-l6-v2`` (embedded default), a local dir or hub name.
        pooling: ``cls`` | ``mean`` | ``sequence``.
        device: torch device.
        max_length: longest input in tokens (longer texts are truncated).
        trust_remote_code: allow code shipped with the model (off by default).
    """

    def __init__(
        self,
        name: str,
        pooling: str = "mean",
        device: str = "cpu",
        max_length: int = 256,
        trust_remote_code: bool = False,
    ):
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLINGS:
            raise EmbeddingError(f"--pooling must be one of {POOLINGS}, got {pooling!r}")
        path, _ = resolve_model(name)
        self.name = name
        self.pooling = pooling
        self.device = device
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model = AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model.to(device).eval()
        self.dim = int(self.model.config.hidden_size)

    def __call__(self, texts: List[str]) -> List[np.ndarray]:
        """Embed non-empty texts; returns one float32 ``(L, C)`` matrix per text."""
        import torch

        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state.float()  # (B, T, C)
        mask = batch["attention_mask"].bool()  # (B, T)
        if self.pooling == "cls":
            pooled = hidden[:, :1]  # (B, 1, C)
        elif self.pooling == "mean":
            weights = mask.float() / mask.sum(dim=1, keepdim=True)
            pooled = torch.einsum("bt,btc->bc", weights, hidden)[:, None]  # (B, 1, C)
        else:
            return [hidden[i, mask[i]].cpu().numpy() for i in range(len(texts))]
        return [row.cpu().numpy() for row in pooled]


@dataclass
class EmbedSummary:
    utterances: int = 0
    embedded: int = 0
    resumed: int = 0
    empty: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.utterances} utterances: {self.embedded} embedded, {self.resumed} resumed, "
                f"{self.empty} empty, {self.seconds:.1f} s")


def _partial_keys(scp: Path, ark: Path) -> List[str]:
    """Keys of a partial scp whose data lies wholly inside the ark (complete records)."""
    if not scp.is_file() or not ark.is_file():
        return []
    size = ark.stat().st_size
    keys = []
    for _, fields in read_table(scp, min_fields=2, max_fields=2):
        offset = int(fields[1].rsplit(":", 1)[1])
        if offset >= size:
            break
        keys.append(fields[0])
    # The last record may be torn: check it reads back.
    if keys:
        try:
            kaldiio.load_scp(str(scp))[keys[-1]]
        except Exception:  # noqa: BLE001 - any read failure means a torn record
            keys.pop()
    return keys


def embed_texts(
    texts: Dict[str, str],
    encoder: TextEncoder,
    out_dir: Path,
    source_hash: str,
    batch_size: int = 32,
    progress: bool = True,
) -> EmbedSummary:
    """Embed every text into ``out_dir/emb_<pooling>.{ark,scp}`` and write ``meta.json``.

    Args:
        texts: utterance -> text, in output order ("" = no context).
        encoder: the text encoder.
        out_dir: output dir.
        source_hash: hash of the source text file (recorded; a partial run
            of another source is discarded).
        batch_size: texts per encoder call.
        progress: show a tqdm bar.
    """
    start = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"emb_{encoder.pooling}"
    ark, scp = out_dir / f"{stem}.partial.ark", out_dir / f"{stem}.partial.scp"
    partial_meta = out_dir / f"{stem}.partial.json"
    identity = {"encoder": encoder.name, "pooling": encoder.pooling, "source_hash": source_hash,
                "max_length": encoder.max_length}
    meta_path = out_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    final_scp = out_dir / f"{stem}.scp"
    if meta.get(stem, {}).get("identity") == identity and final_scp.is_file() and [
            fields[0] for _, fields in read_table(final_scp, 2, 2)] == list(texts):
        logger.info(f"{final_scp} is up to date")
        return EmbedSummary(utterances=len(texts), resumed=len(texts))
    if partial_meta.is_file() and json.loads(partial_meta.read_text()) != identity:
        logger.warning(f"{out_dir}: discarding a partial run of another source or encoder")
        for path in (ark, scp):
            path.unlink(missing_ok=True)
    write_text_atomic(partial_meta, json.dumps(identity))
    done = set(_partial_keys(scp, ark))
    if done:  # rewrite the scp without a torn tail
        lines = [line for line in scp.read_text().splitlines() if line.split()[0] in done]
        write_text_atomic(scp, "".join(line + "\n" for line in lines))
    summary = EmbedSummary(utterances=len(texts), resumed=len(done))
    todo = [u for u in texts if u not in done]
    with tqdm(total=len(todo), unit="utt", desc=f"embed {encoder.pooling}", disable=not progress) as bar:
        # Longest first within the whole set, so batches hold similar lengths.
        order = sorted(todo, key=lambda u: -len(texts[u]))
        for first in range(0, len(order), batch_size):
            chunk = order[first:first + batch_size]
            nonempty = [u for u in chunk if texts[u]]
            matrices = dict(zip(nonempty, encoder([texts[u] for u in nonempty]) if nonempty else []))
            out = {}
            for utt in chunk:
                matrix = matrices.get(utt, np.zeros((0, encoder.dim), np.float32))
                if not np.isfinite(matrix).all():
                    raise EmbeddingError(f"utterance {utt}: the encoder produced NaN or inf")
                out[utt] = np.ascontiguousarray(matrix, dtype=np.float32)
                summary.empty += int(not texts[utt])
            kaldiio.save_ark(str(ark), out, scp=str(scp), append=True)
            summary.embedded += len(nonempty)
            bar.update(len(chunk))
    # Final scp in the order of `texts`, then rename into place.
    index = {fields[0]: fields[1] for _, fields in read_table(scp, min_fields=2, max_fields=2)}
    final_ark = out_dir / f"{stem}.ark"
    os.replace(ark, final_ark)
    write_text_atomic(final_scp, "".join(
        f"{u} {index[u].replace(str(ark), str(final_ark))}\n" for u in texts))
    scp.unlink()
    partial_meta.unlink()
    meta[stem] = {"identity": identity, "encoder": encoder.name, "pooling": encoder.pooling,
                  "dim": encoder.dim, "utterances": len(texts),
                  "empty": sum(1 for u in texts if not texts[u])}
    write_text_atomic(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    summary.seconds = time.time() - start
    return summary


def check_same_ids(texts: Dict[str, str], reference: Dict[str, str], where: str, ref_where: str) -> None:
    """Raise naming the first utterance that is in one set of ids and not the other."""
    mismatch = key_mismatch(texts, reference)
    if mismatch is not None:
        utt, kind = mismatch
        detail = f"is not in {ref_where}" if kind == "extra" else f"of {ref_where} is missing"
        raise EmbeddingError(f"{where}: utterance {utt} {detail}")
