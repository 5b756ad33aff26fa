"""``fieldreport events ...``: backend events sent through the full-stack API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from fieldreport.cli.common import (
    STORAGE_FIELDS,
    optional_project_id,
    pop_settings,
    print_json,
    settings_options,
    with_state,
)
from fieldreport.state import AppState
from fieldreport.storage.backend_events import EVENT_TYPES, backend_event_dict, list_events


@click.group()
def events() -> None:
    """Backend events (logs, exceptions) attached to recordings."""


@events.command("list")
@click.option("--recording", required=True, help="The recording UUID.")
@click.option("--project", "project_name", help="Only this project's events (name or id).")
@click.option("--type", "types", multiple=True, type=click.Choice(EVENT_TYPES), help="Repeatable.")
@click.option("--level", "levels", multiple=True, help="e.g. --level error (repeatable).")
@click.option("--since", type=int, help="From this unix millisecond timestamp (inclusive).")
@click.option("--until", type=int, help="Up to this unix millisecond timestamp (inclusive).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(
    recording: str,
    project_name: str | None,
    types: tuple[str, ...],
    levels: tuple[str, ...],
    since: int | None,
    until: int | None,
    limit: int,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """List a recording's backend events, oldest first."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        project_id = await optional_project_id(state, project_name)
        async with state.db.read() as conn:
            found = await list_events(
                conn,
                recording,
                project_id=project_id,
                since=since,
                until=until,
                types=types,
                levels=levels,
                limit=limit,
            )
        if as_json:
            print_json([{**backend_event_dict(e), "project_id": e.project_id} for e in found])
            return
        if not found:
            click.echo(f"no backend events for recording {recording}")
        for e in found:
            when = datetime.fromtimestamp(e.timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            waiting = "  (recording not started yet)" if e.pending else ""
            title = e.title or e.payload.splitlines()[0][:80] if (e.title or e.payload) else ""
            click.echo(f"{when[:-3]}  {e.type:<9} {e.level:<8} {e.origin or '-'}  {title}{waiting}")

    with_state(settings, go)
