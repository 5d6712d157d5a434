"""A trained model as one self-contained zip, and its unpacking anywhere.

ESPnet's ``espnet2.bin.pack asr`` archives the config and the weights, and its
unpack rewrites only config values that are exactly an archived file's path.
A GCFT config also names a *directory*: the S3PRL frontend's upstream
(``frontend_conf.frontend_conf.path_or_url``, e.g. ``exp/ssl/tiny_wav2vec2``),
from which S3PRL reads the model's config and feature extractor at
construction. A pack that leaves it out loads only beside the recipe that made
it. :func:`pack_model` therefore archives, besides ``config.yaml`` and the
checkpoint:

- the upstream's files when ``path_or_url`` is a local directory (or a
  Hugging Face model in the local cache): for ``hf_wav2vec2*`` upstreams only
  the non-weight ones (``config.json``, ``preprocessor_config.json``, ...),
  since their weights are in the checkpoint and the model is built without
  them (:func:`espnet_gcft.asr.compat.weightless_frontend`); for other
  upstreams the whole directory;
- the files the config names that decoding reads: ``bpemodel`` and
  ``normalize_conf.stats_file``;
- the run's ``context.yaml`` when there is one (how the context the model was
  trained on was made).

Inside the archive every such value is relative to the archive's root, and
``meta.yaml`` says which config keys hold them. The zip is byte-for-byte
deterministic (entries in a fixed order with a fixed date), so a rerun of the
same model packs the same bytes.

:func:`unpack_model` extracts an archive into a directory named by a hash of
its content under the cache (``$GCFT_CACHE``, default
``~/.cache/espnet_gcft/packed``), atomically, and rewrites those values to
absolute paths there: a changed archive never meets a stale unpack, and two
processes unpacking the same archive do not tear each other's files.

An S3PRL upstream of the wav2vec 2.0, HuBERT and WavLM families (``wav2vec2``,
``hubert``, ``wavlm_base_plus``, ... or their ``*_local`` / ``*_custom``
entries with a checkpoint file) is built from one checkpoint file, which S3PRL
downloads into its cache for a hub name. The pack carries that checkpoint
without its weights (the trained ones are in the model's checkpoint; S3PRL's
converted format keeps the model's and the task's configs beside them), and
the config names the family's ``*_local`` entry on it; the weightless build
(:func:`espnet_gcft.asr.compat.weightless_frontend`) builds the model from those
configs. A checkpoint in another format travels whole.
"""

import io
import os
from pathlib import Path
import shutil
import tarfile
import tempfile
from typing import Dict, List, Optional, Tuple, Union
import zipfile

import yaml

from espnet_gcft.errors import InputError, MissingInputError
from espnet_gcft.fileio import atomic_file, file_hash

FORMAT = "espnet_gcft.pack/1"
# Weight files of an upstream directory: the checkpoint holds the trained weights.
WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx")
# (zip entries carry a date; a fixed one keeps the archive's bytes the same across reruns)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Config keys (paths into the nested config) whose value is a file decoding reads.
FILE_KEYS = (("bpemodel",), ("normalize_conf", "stats_file"))
UPSTREAM_KEY = ("frontend_conf", "frontend_conf", "path_or_url")
CONTEXT_FILE = "context.yaml"


class PackError(InputError):
    """A model that cannot be packed or unpacked; the message names the file."""


def _get(config: dict, keys: Tuple[str, ...]):
    value = config
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _set(config: dict, keys: Tuple[str, ...], value) -> None:
    for key in keys[:-1]:
        config = config[key]
    config[keys[-1]] = value


def upstream_dir(config: dict, where: Union[str, Path] = "config") -> Optional[Path]:
    """The local directory of the config's S3PRL upstream, or None for a hub upstream.

    A ``path_or_url`` that is not a directory is looked up in the Hugging Face
    cache (offline), as ``hf_wav2vec2_custom`` accepts a model name there; one
    that looks like a path and does not exist is an error (the pack would not
    load anywhere else).
    """
    if config.get("frontend") != "s3prl":
        return None
    value = _get(config, UPSTREAM_KEY)
    if not value:
        return None
    if Path(value).is_dir():
        return Path(value)
    if str(value).startswith(("/", "./", "../", "~")) or str(value).count("/") > 1:
        raise PackError(f"{where}: the upstream directory {value} does not exist here "
                        "(pack from the recipe dir the model was trained in)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(value), local_files_only=True))
    except Exception:  # not a hub name, or not cached: S3PRL resolves it itself
        return None


# S3PRL upstream families built from one checkpoint file: the key of its weights (in S3PRL's
# converted format) and the hub entry that loads a local file
CHECKPOINT_FAMILIES = {"wav2vec2": ("model_weight", "wav2vec2_local"),
                       "hubert": ("model_weight", "hubert_local"),
                       "wavlm": ("model", "wavlm_local")}


class _Found(Exception):
    """Raised by the stand-in expert with the checkpoint path S3PRL would load."""


def checkpoint_upstream(config: dict, where: Union[str, Path] = "config") -> Optional[Tuple[str, Path]]:
    """``(family, checkpoint file)`` of the config's S3PRL upstream when it is one of the
    :data:`CHECKPOINT_FAMILIES`; None for other frontends and upstreams.

    A hub name's checkpoint is the file S3PRL downloaded into its cache when the
    model was built for training (found without any download); one missing there
    is an error naming the entry.
    """
    upstream = _get(config, ("frontend_conf", "frontend_conf", "upstream")) or ""
    family = next((f for f in CHECKPOINT_FAMILIES if upstream.startswith(f)), None)
    if config.get("frontend") != "s3prl" or family is None:
        return None
    value = _get(config, UPSTREAM_KEY)
    if value and Path(value).is_file():
        return family, Path(value)
    import importlib

    from s3prl import hub
    from s3prl.util.download import _urls_to_filepaths

    from espnet_gcft.asr.compat import swapped_attribute

    entry = getattr(hub, upstream, None)
    if entry is None:
        raise PackError(f"{where}: S3PRL has no upstream {upstream!r}")
    hubconf = importlib.import_module(f"s3prl.upstream.{family}.hubconf")

    def cached(*urls, refresh=False, download=True):  # the cache path, never a download
        return _urls_to_filepaths(*urls, refresh=refresh, download=False)

    def found(ckpt, *args, **kwargs):
        raise _Found(str(ckpt))

    try:
        with swapped_attribute(hubconf, "_urls_to_filepaths", cached), \
                swapped_attribute(hubconf, "_UpstreamExpert", found):
            entry(**({"ckpt": value} if value else {}))
    except _Found as hit:
        path = Path(hit.args[0])
    except (AssertionError, OSError, TypeError) as error:
        raise PackError(f"{where}: S3PRL upstream {upstream!r} ({value or 'its hub checkpoint'}) "
                        f"cannot be resolved here: {error}") from None
    else:  # a legacy (fairseq) entry, which reads the checkpoint itself
        raise PackError(f"{where}: S3PRL upstream {upstream!r} does not load a converted "
                        "checkpoint; pack a model trained on its converted entry")
    if not path.is_file():
        raise PackError(f"{where}: the checkpoint of S3PRL upstream {upstream!r} is not in "
                        f"S3PRL's cache ({path}): pack on the machine that trained the model")
    return family, path


def weightless_checkpoint(family: str, path: Path) -> Optional[bytes]:
    """The checkpoint file without its weights (``torch.save`` bytes), or None when it is
    not in S3PRL's converted format (then it travels whole)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    key = CHECKPOINT_FAMILIES[family][0]
    if not isinstance(state, dict) or key not in state:
        return None
    state[key] = {}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def weightless(config: dict) -> bool:
    """Whether the upstream is built from its config alone when a checkpoint follows
    (:func:`espnet_gcft.asr.compat.weightless_frontend`): its weight files need not travel."""
    upstream = _get(config, ("frontend_conf", "frontend_conf", "upstream")) or ""
    return upstream.startswith("hf_wav2vec2")


def _upstream_files(directory: Path, strip_weights: bool) -> List[Path]:
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and not (strip_weights and p.name.endswith(WEIGHT_SUFFIXES)))
    if not any(p.name == "config.json" for p in files):
        raise PackError(f"{directory}: the upstream directory has no config.json, "
                        "so the model could not be built from the pack")
    return files


def pack_model(exp_dir: Union[str, Path], model_file: Union[str, Path],
               outpath: Union[str, Path]) -> Dict[str, str]:
    """Write ``outpath`` (a zip) holding everything the model needs to be built and run.

    Args:
        exp_dir: the training run's dir: ``config.yaml`` and, when the recipe
            wrote one, ``context.yaml``.
        model_file: the checkpoint (a state dict).
        outpath: the zip to write (written to a temporary file, then renamed).

    Returns:
        archive name -> source path of every entry but the rewritten config.
    """
    exp_dir, model_file, outpath = Path(exp_dir), Path(model_file), Path(outpath)
    config_path = exp_dir / "config.yaml"
    for path in (config_path, model_file):
        if not path.is_file():
            raise MissingInputError(f"{path}: no such file to pack")
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    entries: Dict[str, Path] = {"model/" + model_file.name: model_file}
    rewritten: Dict[str, str] = {}
    contents: Dict[str, bytes] = {}  # entries made here rather than copied
    checkpoint = checkpoint_upstream(config, config_path)
    upstream = upstream_dir(config, config_path) if checkpoint is None else None
    if upstream is not None:
        for path in _upstream_files(upstream, weightless(config)):
            entries[f"upstream/{path.name}"] = path
        _set(config, UPSTREAM_KEY, "upstream")
        rewritten[".".join(UPSTREAM_KEY)] = "upstream"
    elif checkpoint is not None:
        family, path = checkpoint
        name = f"upstream/{family}.pt"
        stripped = weightless_checkpoint(family, path)
        if stripped is None:
            entries[name] = path
        else:
            contents[name] = stripped
        _set(config, ("frontend_conf", "frontend_conf", "upstream"), CHECKPOINT_FAMILIES[family][1])
        _set(config, UPSTREAM_KEY, name)
        rewritten[".".join(UPSTREAM_KEY)] = name
    for keys in FILE_KEYS:
        value = _get(config, keys)
        if not value:
            continue
        if not Path(value).is_file():
            raise MissingInputError(f"{config_path}: {'.'.join(keys)} names {value}, "
                                    "which does not exist")
        name = f"files/{'.'.join(keys)}/{Path(value).name}"
        entries[name] = Path(value)
        _set(config, keys, name)
        rewritten[".".join(keys)] = name
    if (exp_dir / CONTEXT_FILE).is_file():
        entries["model/" + CONTEXT_FILE] = exp_dir / CONTEXT_FILE
    meta = {
        "format": FORMAT,
        "files": {"asr_model_file": "model/" + model_file.name},
        "yaml_files": {"asr_train_config": "model/config.yaml"},
        "paths_in_config": rewritten,
        "context": "model/" + CONTEXT_FILE if "model/" + CONTEXT_FILE in entries else None,
    }
    with atomic_file(outpath) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        _write(archive, "meta.yaml", yaml.safe_dump(meta, sort_keys=True).encode())
        _write(archive, "model/config.yaml", yaml.safe_dump(config, sort_keys=True).encode())
        for name in sorted({**entries, **contents}):
            if name in contents:
                _write(archive, name, contents[name])
                continue
            with open(entries[name], "rb") as f:
                _write(archive, name, f.read())
    return {**{name: str(path) for name, path in entries.items()},
            **{name: f"{checkpoint[1]} (without its weights)" for name in contents}}


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def cache_root() -> Path:
    return Path(os.environ.get("GCFT_CACHE") or Path.home() / ".cache" / "espnet_gcft") / "packed"


def unpack_model(archive_path: Union[str, Path]) -> Dict[str, Optional[str]]:
    """Extract a pack into the cache (once per archive content); its files' absolute paths.

    Returns:
        ``asr_train_config``, ``asr_model_file`` and ``context`` (None when the
        pack has no ``context.yaml``). An archive from ESPnet's own pack (no
        ``format`` in its meta.yaml) is unpacked the same way; its config's
        directories are left as they were.
    """
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise MissingInputError(f"{archive_path}: no such packed model")
    target = cache_root() / file_hash(archive_path)
    if not zipfile.is_zipfile(archive_path):
        if tarfile.is_tarfile(archive_path):  # ESPnet's own pack (tar, tgz)
            from espnet2.main_funcs.pack_funcs import unpack

            files = unpack(archive_path, target)
            return {"asr_train_config": files["asr_train_config"],
                    "asr_model_file": files["asr_model_file"], "context": None}
        raise PackError(f"{archive_path}: not a zip archive")
    if not (target / ".complete").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        try:
            with zipfile.ZipFile(archive_path) as archive:
                meta = _read_meta(archive, archive_path)
                for name in archive.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise PackError(f"{archive_path}: entry {name} points outside the archive")
                archive.extractall(staging)
            _absolute_config(staging, meta, target)
            (staging / ".complete").write_text(FORMAT + "\n")
            try:
                os.replace(staging, target)
            except OSError:  # another process unpacked the same archive first
                if not (target / ".complete").is_file():
                    raise PackError(f"{target}: an incomplete unpack is in the way; remove it") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    with open(target / "meta.yaml", encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    context = meta.get("context")
    return {
        "asr_train_config": str(target / meta["yaml_files"]["asr_train_config"]),
        "asr_model_file": str(target / meta["files"]["asr_model_file"]),
        "context": str(target / context) if context else None,
    }


def _read_meta(archive: zipfile.ZipFile, archive_path: Path) -> dict:
    try:
        meta = yaml.safe_load(archive.read("meta.yaml"))
    except KeyError:
        raise PackError(f"{archive_path}: no meta.yaml (not a packed model)") from None
    if not isinstance(meta, dict) or "yaml_files" not in meta or "files" not in meta:
        raise PackError(f"{archive_path}: meta.yaml lacks files/yaml_files")
    return meta


def _absolute_config(root: Path, meta: dict, final_root: Path) -> None:
    """Point the config unpacked in ``root`` at the archived files' place once it is renamed
    to ``final_root``."""
    config_path = root / meta["yaml_files"]["asr_train_config"]
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if meta.get("format") == FORMAT:
        for dotted, name in (meta.get("paths_in_config") or {}).items():
            _set(config, tuple(dotted.split(".")), str(final_root / name))
    else:  # ESPnet's pack: values equal to an archived file's name
        names = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        config = _rewrite_names(config, names, final_root)
    buffer = io.StringIO()
    yaml.safe_dump(config, buffer, sort_keys=True)
    config_path.write_text(buffer.getvalue(), encoding="utf-8")


def _rewrite_names(value, names, root: Path):
    if isinstance(value, dict):
        return {k: _rewrite_names(v, names, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_names(v, names, root) for v in value]
    if isinstance(value, str) and value in names:
        return str(root / value)
    return value
