"""``fieldreport session ...`` and ``fieldreport gc``: find recordings, expire old ones."""

from __future__ import annotations

from typing import Any

import click

from fieldreport.api.session_views import batch_dict, session_dict
from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    optional_project_id,
    pop_settings,
    print_json,
    settings_options,
    with_state,
)
from fieldreport.retention import (
    collect_garbage,
    sweep_orphaned_batches,
    sweep_orphaned_reports,
    sweep_partial_files,
)
from fieldreport.state import AppState
from fieldreport.storage.session_batches import session_batches_in_order
from fieldreport.storage.sessions import get_session, list_sessions, reports_naming_session
from fieldreport.units import parse_duration


@click.group()
def session() -> None:
    """List and show recorded sessions (web and mobile)."""


@session.command("list")
@click.option("--project", "project_name", help="Only this project's sessions (name or id).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(project_name: str | None, limit: int, as_json: bool, **kwargs: Any) -> None:
    """List sessions, newest first."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        project_id = await optional_project_id(state, project_name)
        async with state.db.read() as conn:
            found = await list_sessions(conn, project_id=project_id, limit=limit)
        if as_json:
            print_json([session_dict(s) for s in found])
            return
        if not found:
            click.echo("no sessions")
        for s in found:
            when = s.started_at.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(
                f"{s.id}  {s.project_name:<12} {s.platform:<7} {when}  "
                f"{s.batch_count} batches, {s.byte_count} bytes"
            )

    with_state(settings, go)


@session.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def show(session_id: str, as_json: bool, **kwargs: Any) -> None:
    """Show one session, with the reports that name it."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            s = await get_session(conn, session_id)
            if s is None:
                fail(f"no session {session_id!r}")
                return
            linked = await reports_naming_session(conn, s.project_id, s.id)
            batches = await session_batches_in_order(conn, s.id)
        data = session_dict(s, linked, state.public_url)
        data["batches"] = [batch_dict(b, s.id) for b in batches]
        if as_json:
            print_json(data)
            return
        for key in (
            "id",
            "project",
            "platform",
            "user_uuid",
            "tracker_version",
            "rev_id",
            "user_device",
            "user_os_version",
            "user_agent",
            "started_at",
            "first_batch_at",
            "last_batch_at",
            "batch_count",
            "byte_count",
        ):
            value = data[key]
            click.echo(f"{key:>16}: {value if value is not None else ''}")
        late = sum(1 for b in batches if b.late)
        if late:
            click.echo(f"{'late batches':>16}: {late}")
        for r in data["reports"]:
            click.echo(f"{'report':>16}: #{r['ticketnr']} {r['reportid']} ({r['created_at']})")

    with_state(settings, go)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if seconds <= 0:
        raise click.BadParameter("must be more than 0")
    return seconds


@click.command()
@click.option(
    "--older-than",
    required=True,
    callback=_duration,
    help="Remove sessions whose last batch is older than this, e.g. 30d.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option(
    "--orphans",
    is_flag=True,
    help="Also delete blobs no row names: batch blobs whose session is gone, report files "
    "older than an hour whose report was never committed (lists every session and report blob), "
    "and temporary files of writes a crash interrupted, an hour after their last write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def gc(older_than: float, dry_run: bool, orphans: bool, as_json: bool, **kwargs: Any) -> None:
    """Remove old session recordings: their rows, batch blobs and unused mobile images.

    Reports are kept whole (a report keeps its own screenshot and files), even when the
    session they name is removed. `serve` can do this daily: FIELDREPORT_SESSION_RETENTION.
    """
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        result = await collect_garbage(state, older_than, dry_run=dry_run)
        swept, sweep_errors = (
            await sweep_orphaned_batches(state, dry_run=dry_run) if orphans else (0, 0)
        )
        swept_reports, report_errors = (
            await sweep_orphaned_reports(state, dry_run=dry_run) if orphans else (0, 0)
        )
        swept_partial, partial_errors = (
            await sweep_partial_files(state, dry_run=dry_run) if orphans else (0, 0)
        )
        sweep_errors += report_errors + partial_errors
        if as_json:
            print_json(
                {
                    **result.as_dict(),
                    "orphaned_blobs": swept,
                    "orphaned_report_blobs": swept_reports,
                    "partial_files": swept_partial,
                }
            )
            return
        verb = "would remove" if dry_run else "removed"
        click.echo(
            f"{verb} {result.sessions} sessions ({result.batches} batches, {result.bytes} bytes) "
            f"and {result.images} images ({result.image_bytes} bytes)"
        )
        if orphans:
            click.echo(f"{verb} {swept} orphaned batch blobs")
            click.echo(f"{verb} {swept_reports} orphaned report files")
            click.echo(f"{verb} {swept_partial} partial files of interrupted writes")
        if result.blob_errors or sweep_errors:
            failed = result.blob_errors + sweep_errors
            click.echo(f"warning: {failed} blobs could not be deleted", err=True)

    with_state(settings, go)
