"""The holder line of a recipe lock file (``scripts/lib/locks.sh`` writes it).

A lock file ``<dir>/.locks/<name>.lock`` names the run that last took the
lock on its first line, ``pid <pid>, started <time>, on <host>, in <dir>``,
and a run that only reads the output adds a second line, ``reading``.
"""

import os
from pathlib import Path
import re
from typing import Optional, Tuple

HOLDER = re.compile(r"^pid ([0-9]+), started ([^,]*), on ([^,]*), in (.*)$")


def parse_holder(text: str) -> Optional[Tuple[int, str, str, str]]:
    """(pid, started, host, dir) of a lock file's first line, or None."""
    match = HOLDER.match(text.splitlines()[0] if text else "")
    if match is None:
        return None
    return int(match.group(1)), match.group(2), match.group(3), match.group(4)


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != "Z"


def holder_gone(lock: Path, host: str) -> bool:
    """The lock file names a holder on ``host`` that is no longer running."""
    try:
        holder = parse_holder(Path(lock).read_text(encoding="utf-8"))
    except OSError:
        return False
    return holder is not None and holder[2] == host and not _running(holder[0])
