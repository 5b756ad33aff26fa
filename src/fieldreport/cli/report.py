"""``fieldreport report ...``: find stored reports again."""

from __future__ import annotations

from typing import Any

import click

from fieldreport.api.serialize import report_dict
from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    optional_project_id,
    pop_settings,
    print_json,
    settings_options,
    with_state,
)
from fieldreport.state import AppState
from fieldreport.storage.reports import get_report, list_reports


@click.group()
def report() -> None:
    """List and show stored reports."""


@report.command("list")
@click.option("--project", "project_name", help="Only this project's reports (name or id).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(project_name: str | None, limit: int, as_json: bool, **kwargs: Any) -> None:
    """List reports, newest first."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        project_id = await optional_project_id(state, project_name)
        async with state.db.read() as conn:
            found = await list_reports(conn, project_id=project_id, limit=limit)
        if as_json:
            print_json([report_dict(r, state.public_url) for r in found])
            return
        if not found:
            click.echo("no reports")
        for r in found:
            when = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
            subject = r.fields.subject or r.fields.sendercomment[:60] or "(no subject)"
            click.echo(f"{r.id}  {r.project_name} #{r.ticketnr:<5} {when}  {subject}")

    with_state(settings, go)


@report.command("show")
@click.argument("reportid")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def show(reportid: str, as_json: bool, **kwargs: Any) -> None:
    """Show one report with its files."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            r = await get_report(conn, reportid)
        if r is None:
            fail(f"no report {reportid!r}")
            return
        data = report_dict(r, state.public_url)
        if as_json:
            print_json(data)
            return
        for key in (
            "reportid",
            "project",
            "ticketnr",
            "ticketurl",
            "created_at",
            "subject",
            "senderemail",
            "browser",
            "ipaddress",
            "referer",
            "recording",
        ):
            click.echo(f"{key:>14}: {data[key] if data[key] is not None else ''}")
        click.echo(f"{'sendercomment':>14}: {data['sendercomment']}")
        click.echo(f"{'additionalinfo':>14}: {data['additionalinfo']}")
        for i, note in enumerate(data["notelist"], 1):
            click.echo(f"{'note ' + str(i):>14}: {note}")
        for f in r.files:
            click.echo(
                f"{f.role:>14}: {f.filename} ({f.content_type}, {f.size} bytes, "
                f"sha256 {f.sha256[:12]}…)"
            )

    with_state(settings, go)
