"""Running the `fieldreport` command as a real subprocess of this checkout's code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def fieldreport_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fieldreport", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: this checkout's src first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDREPORT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env
