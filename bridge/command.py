"""How to write an `fba-bridge` command in a hint so that pasting it runs this installation.

`bridge` is also iproute2's command on most Linux machines, and the quickstart never activates
the virtualenv, so a bare name in a hint can run the wrong program or none at all.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

NAME = "fba-bridge"


def command() -> str:
    """`fba-bridge` when that name on PATH is this installation's script; else the script's path
    (relative when it is below the working directory, e.g. `.venv/bin/fba-bridge`); else
    `python -m bridge` with this interpreter."""
    script = Path(sys.executable).parent / NAME
    if not script.is_file():
        return f"{_shown(Path(sys.executable))} -m bridge"
    found = shutil.which(NAME)
    if found and Path(found).resolve() == script.resolve():
        return NAME
    return _shown(script)


def _shown(path: Path) -> str:
    try:
        relative = path.absolute().relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(path.absolute()))
    text = str(relative)
    return shlex.quote(text if text.startswith(".") else f"./{text}")
