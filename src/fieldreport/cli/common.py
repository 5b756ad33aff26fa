"""Shared CLI plumbing: settings flags generated from :class:`Settings`, async runners, output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
from pydantic import ValidationError

from fieldreport.settings import Settings, env_var
from fieldreport.state import AppState, open_state
from fieldreport.storage.projects import Project, get_project

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

STORAGE_FIELDS = (
    "data_dir",
    "database_url",
    "blob_url",
    "s3_endpoint",
    "s3_region",
    "s3_access_key_id",
    "s3_secret_access_key",
    "public_url",
)


def _option_for(name: str) -> Callable[[F], F]:
    info = Settings.model_fields[name]
    flag = "--" + name.replace("_", "-")
    help_text = f"{info.description} [env: {env_var(name)}]"
    return click.option(flag, name, default=None, help=help_text, show_default=False)


def settings_options(fields: tuple[str, ...] | None = None) -> Callable[[F], F]:
    """Add one ``--flag`` per settings field (all of them, or just ``fields``)."""
    names = list(fields or Settings.model_fields)

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = _option_for(name)(func)
        return func

    return decorate


def pop_settings(kwargs: dict[str, Any]) -> Settings:
    """Build Settings from env vars overlaid with the flags given on the command line."""
    overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in Settings.model_fields}
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from exc


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def with_state(settings: Settings, action: Callable[[AppState], Awaitable[T]]) -> T:
    """Open the database and blob store, run ``action``, close them."""

    async def go() -> T:
        state = await open_state(settings)
        try:
            return await action(state)
        finally:
            await state.close()

    return run(go())


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


async def require_project(state: AppState, name: str) -> Project:
    """The project named ``name`` (or with that id); exits with an error when there is none."""
    async with state.db.read() as conn:
        found = await get_project(conn, name)
    if found is None:
        fail(f"no project named {name!r} (see `fieldreport project list`)")
    return found


async def optional_project_id(state: AppState, name: str | None) -> int | None:
    """For ``--project`` filters: None when not given, else the project's id (or exit)."""
    return None if name is None else (await require_project(state, name)).id
