"""Running ``fieldreport`` as a real subprocess against a test's settings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from fieldreport.settings import Settings, env_var
from tests.support.proc import fieldreport_cmd, subprocess_env


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in Settings.model_fields:
        if name not in settings.model_fields_set:
            continue
        value: Any = getattr(settings, name)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = "1" if value else "0"
        if isinstance(value, list):
            value = ",".join(value)
        values[env_var(name)] = str(value)
    return subprocess_env(**{**values, **extra})


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def cli(settings: Settings, *args: str, **env: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *fieldreport_cmd(*args),
        env=settings_env(settings, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
