"""A recipe script's options block: each option's type and range, checked before any work.

A shell script of the recipes declares its options once, between ``# <options>``
and ``# </options>``, one per line::

    nj=4                     # [int >= 1] parallel jobs for data formatting and embedding
    pooling=mean             # [cls|mean|sequence] how a text becomes an embedding
    pretrain_config=""       # [file or empty, stages 5-6] context-free config trained once

The bracket that opens the comment is the option's *spec*: what values it
allows, in the words the help prints (``utils/parse_options.sh`` shows it) and
every error repeats. The rest of the comment is its meaning. A spec is a kind
(:data:`KINDS`, or ``a|b|c``: one of these words), then qualifiers after
commas:

- ``or empty`` after the kind: the empty value is allowed too (otherwise it
  is an error, which makes ``[name]`` a required option);
- ``stage N`` / ``stages A-B`` / ``stages A and B``: the kinds that look at the
  disk (``file``, ``files``, ``dir``, ``model``) are checked only when the run's
  ``--stage``/``--stop_stage`` range includes one of these stages (the stages
  that read it);
- ``unless <option>=<value>``: not checked when that option has that value
  (``corpus_dir`` need not exist with ``download=true``).

:func:`check_values` checks a script's values against its block and raises
:class:`OptionError` naming the option, the value and what is allowed.
"""

from dataclasses import dataclass, field
import argparse
import os
from pathlib import Path
import re
import shlex
import shutil
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from espnet_gcft.errors import InputError

BLOCK_START, BLOCK_END = "# <options>", "# </options>"
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*?)(?:\s+#\s+(.*))?$")
_SPEC = re.compile(r"^\[([^\]]*)\]\s*(.*)$")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_DEGRADED = re.compile(r"^(replaced|dropped)(0(\.[0-9]+)?|1(\.0*)?)$")
_DEVICE = re.compile(r"^(cpu|mps|cuda(:[0-9]+)?)$")
CONDITIONS = ("shuffled", "opposite", "hyp", "self")


class OptionError(InputError, ValueError):
    """A value an option does not allow (names the option, the value and what it allows)."""


@dataclass
class Option:
    """One declared option: ``name=default  # [spec] meaning``."""

    name: str
    default: str
    spec: str
    meaning: str
    kind: str = ""
    empty_ok: bool = False
    stages: Tuple[int, ...] = ()
    unless: Optional[Tuple[str, str]] = None
    argument: str = ""  # the script or module of "options of ..."
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Tuple[str, ...] = field(default_factory=tuple)


def _stages(text: str, where: str) -> Tuple[int, ...]:
    out: List[int] = []
    for part in text.split(" and "):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise OptionError(f"{where}: stages {text!r}: expected N, A-B or A and B")
        out += range(int(first), int(last or first) + 1)
    return tuple(out)


def parse_spec(option: Option, where: str) -> Option:
    """Fill ``option``'s kind, range and qualifiers from its spec."""
    kind, *qualifiers = [part.strip() for part in option.spec.split(",")]
    if kind.endswith(" or empty"):
        kind, option.empty_ok = kind[:-len(" or empty")], True
    for qualifier in qualifiers:
        if qualifier.startswith(("stage ", "stages ")):
            option.stages = _stages(qualifier.split(None, 1)[1], where)
        elif qualifier.startswith("unless ") and "=" in qualifier:
            name, _, value = qualifier[len("unless "):].partition("=")
            option.unless = (name.strip(), value.strip())
        else:
            raise OptionError(f"{where}: unknown qualifier {qualifier!r} in [{option.spec}]")
    number = re.match(r"^(int|float)(?:\s+(>=)\s*(-?[0-9.]+)|\s+(-?[0-9.]+)-([0-9.]+))?$", kind)
    if number:
        option.kind = number.group(1)
        if number.group(2):
            option.low = float(number.group(3))
        elif number.group(4):
            option.low, option.high = float(number.group(4)), float(number.group(5))
    elif kind.startswith("options of "):
        option.kind, option.argument = "options", kind[len("options of "):].strip()
    elif "|" in kind:
        option.kind, option.choices = "choice", tuple(kind.split("|"))
    elif kind.startswith("words of ") and "|" in kind:
        option.kind, option.choices = "words", tuple(kind[len("words of "):].split("|"))
    elif kind in KINDS:
        option.kind = kind
    else:
        raise OptionError(f"{where}: unknown kind {kind!r} in [{option.spec}] (kinds: int, "
                          f"float, a|b|c, words of a|b|c, options of <script>, "
                          f"{', '.join(KINDS)})")
    return option


def read_block(script: Path) -> List[Option]:
    """The options declared in a script; a line without a spec is an error naming it."""
    options: List[Option] = []
    inside = False
    for lineno, line in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(BLOCK_START):
            inside = True
        elif line.startswith(BLOCK_END):
            break
        elif inside and (match := _LINE.match(line)):
            name, default, comment = match.group(1), match.group(2), match.group(3) or ""
            where = f"{script}:{lineno}: option {name}"
            spec = _SPEC.match(comment)
            if spec is None:
                raise OptionError(f"{where}: its comment must start with its [spec] "
                                  "(see espnet_gcft/recipe/options.py)")
            options.append(parse_spec(Option(name, default, spec.group(1), spec.group(2)), where))
    if not options:
        raise OptionError(f"{script}: no options declared between {BLOCK_START!r} and {BLOCK_END!r}")
    return options


# ---- checks of one value ----

def _number(option: Option, value: str) -> Optional[str]:
    try:
        number = int(value) if option.kind == "int" else float(value)
    except ValueError:
        return "is not a number" if option.kind == "float" else "is not an integer"
    if option.low is not None and number < option.low or \
            option.high is not None and number > option.high:
        return "is out of range"
    return None


def _words(option: Option, value: str, allowed: Callable[[str], bool]) -> Optional[str]:
    bad = [word for word in value.split() if not allowed(word)]
    return f"{' '.join(bad)} is not allowed" if bad else None


def _file(path: str) -> Optional[str]:
    return None if Path(path).is_file() else f"no such file: {path}"


def _model(value: str, gguf_file: str = "") -> Optional[str]:
    from espnet_gcft.context.models import check_model_available

    return check_model_available(value, gguf_file or None)


def _command(value: str) -> Optional[str]:
    return None if shutil.which(value) else "no such command"


def _variant(word: str) -> bool:
    from espnet_gcft.recipe.variants import VARIANTS

    return word in VARIANTS


def _prompts(values: Dict[str, str]) -> Callable[[str], bool]:
    from espnet_gcft.context.prompts import get_prompt

    def known(prompt: str) -> bool:
        try:
            get_prompt(prompt, values.get("prompt_file") or None)
        except InputError:
            return False
        return True

    return known


def check_options_of(target: str, words: List[str], script: Path) -> Optional[str]:
    """Why ``words`` are not options that ``target`` takes (None: they are).

    ``target`` is a script beside ``script`` (its options block), or a Python
    module with a ``get_parser()`` (argparse), or ``gcft_train`` (ESPnet's
    training parser, whose import takes seconds: only asked for when set).
    """
    if target.endswith(".sh"):
        path = script.parent / target
        if not path.is_file():
            return None  # a recipe without one (checked where it runs)
        declared = {o.name for o in read_block(path)}
        names = [w.split("=", 1)[0][2:].replace("-", "_") for w in words if w.startswith("--")]
        unknown = [n for n in names if n not in declared]
        if unknown:
            return f"{target} has no option --{unknown[0]} (it has --{' --'.join(sorted(declared))})"
        return None
    if target == "gcft_train":
        from espnet_gcft.asr.compat import quiet_imports

        with quiet_imports():
            from espnet_gcft.asr.task import GCFTTask
        parser = GCFTTask.get_parser()
    else:
        import importlib

        parser = importlib.import_module(f"espnet_gcft.bin.{target}").get_parser()
    return _argparse_error(parser, words)


def _argparse_error(parser: argparse.ArgumentParser, words: List[str]) -> Optional[str]:
    class Refused(Exception):
        pass

    def error(message):
        raise Refused(message)

    parser.error = error  # argparse reports through error(); keep the message
    parser.exit_on_error = False
    try:
        _, unknown = parser.parse_known_args(words)
    except (Refused, argparse.ArgumentError) as refused:
        message = str(refused)
        return None if "are required" in message else message
    return f"unknown option(s) {' '.join(unknown)}" if unknown else None


def check_value(option: Option, value: str, values: Dict[str, str], script: Path) -> Optional[str]:
    """Why ``value`` is not allowed (None: it is)."""
    if value == "":
        return None if option.empty_ok or option.kind == "options" else "a value is required"
    kind = option.kind
    if kind in ("int", "float"):
        return _number(option, value)
    if kind == "choice":
        return None if value in option.choices else "is not one of these"
    if kind == "words":
        return _words(option, value, lambda w: w in option.choices)
    if kind == "name":
        return None if _NAME.match(value) else "is not a name (letters, digits, . _ + -)"
    if kind == "names":
        return _words(option, value, lambda w: bool(_NAME.match(w)))
    if kind == "path":
        return None if len(value.split()) == 1 else "has white space"
    if kind == "text":
        return None
    if kind == "device":
        return None if _DEVICE.match(value) else "is not a device"
    if kind == "variants":
        return _words(option, value, _variant)
    if kind == "variant":
        return None if _variant(value) else "is not a variant"
    if kind == "prompt":
        return None if _prompts(values)(value) else "is not a prompt"
    if kind == "md path":
        return None if len(value.split()) == 1 and value.endswith(".md") else \
            "is not a path ending in .md"
    if kind == "conditions":
        return _words(option, value, lambda w: w in CONDITIONS or bool(_DEGRADED.match(w)))
    if kind == "degradation":
        return None if _DEGRADED.match(value) else "is not allowed"
    if kind == "prompts":
        return _words(option, value, _prompts(values))
    if kind == "options":
        try:
            words = shlex.split(value)
        except ValueError as error:
            return f"cannot be split into words: {error}"
        return check_options_of(option.argument, words, script)
    if not _selected(option, values):
        return None
    if kind == "file":
        return _file(value)
    if kind == "files":
        missing = [w for w in value.split() if not Path(w).is_file()]
        return f"no such file: {' '.join(missing)}" if missing else None
    if kind == "dir":
        return None if Path(value).is_dir() else f"no such directory: {value}"
    if kind == "model":
        return _model(value, values.get(f"{option.name}_gguf_file", ""))
    if kind == "command":
        return _command(value)
    raise AssertionError(kind)


def _selected(option: Option, values: Dict[str, str]) -> bool:
    """Whether the run reads what the option names (its stages, its ``unless``)."""
    if option.unless and values.get(option.unless[0]) == option.unless[1]:
        return False
    if option.stages and "stage" in values and "stop_stage" in values:
        try:
            first, last = int(values["stage"]), int(values["stop_stage"])
        except ValueError:
            return True
        return any(first <= s <= last for s in option.stages)
    return True


# kind -> what the help says it allows
KINDS = {
    "name": "a name", "names": "names", "path": "a path", "file": "a file", "files": "files",
    "dir": "a directory", "model": "a model", "command": "a command", "device": "a device",
    "variants": "variants", "conditions": "conditions", "degradation": "a degradation",
    "prompts": "prompts", "text": "any text", "variant": "a variant", "prompt": "a prompt",
    "md path": "a path ending in .md",
}


def check_values(script: Path, values: Dict[str, str],
                 options: Optional[Sequence[Option]] = None) -> None:
    """Check every declared option's value; the first refused one raises :class:`OptionError`."""
    for option in options if options is not None else read_block(script):
        if option.name not in values:
            continue
        value = values[option.name]
        reason = check_value(option, value, values, script)
        if reason is not None:
            raise OptionError(f"--{option.name} {shlex.quote(value)}: {reason}; allowed: "
                              f"[{option.spec}] ({option.meaning})")


# ---- checks across the options of one script ----

def _gcft_run(values: Dict[str, str], script: Path) -> None:
    """gcft.sh: what no single option's spec can say."""
    from espnet_gcft.recipe.variants import get_variant

    def refuse(message: str) -> None:
        raise OptionError(message)

    first, last = int(values["stage"]), int(values["stop_stage"])
    if first > last:
        refuse(f"--stage {first} --stop_stage {last} selects no stage: --stage must not be "
               "after --stop_stage (stages 1-8)")
    stages = set(range(first, last + 1))
    variants = [get_variant(name) for name in values["variants"].split()]
    if values["init_model"] and values["pretrain_config"]:
        refuse("--init_model and --pretrain_config both say where the variants start: give one")
    if values["dist_launcher"] == "slurm" and int(values["train_procs"]) > 1 \
            and os.environ.get("cmd_backend", "local") == "local":
        refuse("--dist_launcher slurm starts the ranks with srun inside a Slurm job: "
               "use cmd_backend=slurm")
    if values["pooling"] == "cls" and any(v.audio_context for v in variants):
        refuse("--pooling cls: the audio context has no [CLS] frame: use --pooling mean or "
               "sequence with " + " ".join(v.name for v in variants if v.audio_context))
    generated = [v.name for v in variants if v.uses_llm]
    prompt = values["context_prompt"] or (values["prompts"].split() or [""])[0]
    if generated and not prompt:
        refuse(f"--prompts is empty, and {' '.join(generated)} read(s) generated context: "
               "name a prompt (--prompts, --context_prompt)")
    if generated and values["context_prompt"] and \
            values["context_prompt"] not in values["prompts"].split() and stages & {3, 4}:
        refuse(f"--context_prompt {values['context_prompt']} is not one of --prompts "
               f"{values['prompts']!r}: stages 3-4 make the contexts of --prompts only")
    if stages & {5, 6}:
        config_dir = Path(values["train_config_dir"])
        for variant in variants:
            if not (config_dir / variant.config).is_file():
                refuse(f"--variants {variant.name}: no {config_dir / variant.config} "
                       f"(--train_config_dir {config_dir} holds train_<variant>.yaml)")
    if 8 in stages:
        expdir = values["expdir"] or (f"exp/{values['ssl']}" if values["ssl"] else "exp")
        for name in values["results_extra"].split():
            if not (Path(expdir) / name).is_dir():
                refuse(f"--results_extra {name}: no {Path(expdir) / name}")
    if values["ssl"] and stages & {4, 5, 6, 7}:
        from espnet_gcft.asr.compat import quiet_imports

        with quiet_imports():
            import s3prl.hub

        if not hasattr(s3prl.hub, values["ssl"]):
            refuse(f"--ssl {values['ssl']}: S3PRL has no such upstream (e.g. wav2vec2, hubert, "
                   "wavlm_base_plus)")


RUN_CHECKS: Dict[str, Callable[[Dict[str, str], Path], None]] = {"gcft.sh": _gcft_run}


def check_script(script: Path, values: Dict[str, str]) -> None:
    """Each option's value against its spec, then the script's checks across options."""
    check_values(script, values)
    extra = RUN_CHECKS.get(script.name)
    if extra is not None:
        extra(values, script)
