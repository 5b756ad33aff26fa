"""``fieldreport destination ...``: each project's chain of push destinations."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    pop_settings,
    print_json,
    require_project,
    settings_options,
    with_state,
)
from fieldreport.delivery.destinations import (
    check_destination,
    default_new,
    destination_dict,
    parse_header,
)
from fieldreport.delivery.formats import FORMATS
from fieldreport.delivery.policy import parse_schedule
from fieldreport.delivery.sample import sample_bundle
from fieldreport.delivery.urls import redact_url
from fieldreport.delivery.worker import Sender
from fieldreport.state import AppState
from fieldreport.storage.destinations import (
    add_destination,
    chain,
    get_destination,
    remove_destination,
)
from fieldreport.storage.projects import get_project
from fieldreport.units import parse_duration

FIELDS = (*STORAGE_FIELDS, "allow_private_destinations")


@click.group()
def destination() -> None:
    """Where a project's reports are pushed: a primary destination and backups, as URLs.

    \b
    http(s)://host/path                   HTTP push (--format multipart|json|xml)
    smtp(s)://user:pass@host:port?to=…    email (when available)
    ftp://user:pass@host/path, sftp://user@host/path   file upload (when available)
    """


@destination.command("add")
@click.argument("project")
@click.argument("url")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="multipart",
    show_default=True,
    help="Payload format for HTTP destinations.",
)
@click.option("--token", default=None, help="Security token sent with every push.")
@click.option(
    "--secret", default=None, help="whsec_… key: sign json/xml pushes (Standard Webhooks)."
)
@click.option(
    "--header", "headers", multiple=True, help="Extra HTTP header 'Name: value' (repeatable)."
)
@click.option(
    "--backup", is_flag=True, help="Append as a backup (tried when the ones before fail)."
)
@click.option(
    "--retry-schedule",
    default="0s,5s,5m,30m,2h,5h,10h,10h",
    show_default=True,
    help="Delay before each attempt on this destination.",
)
@click.option("--timeout", default="15s", show_default=True, help="Request timeout.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(FIELDS)
def add(
    project: str,
    url: str,
    fmt: str,
    token: str | None,
    secret: str | None,
    headers: tuple[str, ...],
    backup: bool,
    retry_schedule: str,
    timeout: str,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Add a destination to PROJECT's chain (the primary, or with --backup a backup)."""
    settings = pop_settings(kwargs)
    try:
        new = dataclasses.replace(
            default_new(url.strip()),
            format=fmt,
            token=token or None,
            secret=secret or None,
            headers=[parse_header(h) for h in headers],
            retry_schedule=parse_schedule(retry_schedule),
            timeout=parse_duration(timeout),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

    async def go(state: AppState) -> None:
        p = await require_project(state, project)
        try:
            await check_destination(new, allow_private=settings.allow_private_destinations)
            async with state.db.write() as conn:
                created = await add_destination(conn, p.id, new, backup=backup)
                first = (await chain(conn, p.id))[0].id == created.id
        except ValueError as exc:
            fail(str(exc))
            return
        shown = destination_dict(created, primary=first)
        if as_json:
            print_json(shown)
        else:
            click.echo(
                f"Added destination #{created.id} to {p.name} as {shown['role']}: "
                f"{shown['url']} ({shown['format'] or shown['scheme']})"
            )

    with_state(settings, go)


@destination.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(project: str, as_json: bool, **kwargs: Any) -> None:
    """List PROJECT's destinations in order: the primary first, then the backups."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        p = await require_project(state, project)
        async with state.db.read() as conn:
            found = await chain(conn, p.id)
        items = [destination_dict(d, primary=i == 0) for i, d in enumerate(found)]
        if as_json:
            print_json(items)
            return
        if not items:
            click.echo(f"{p.name} has no destinations: fieldreport destination add {p.name} URL")
        for d in items:
            extras = []
            if d["token_set"]:
                extras.append("token")
            if d["secret_set"]:
                extras.append("signed")
            if d["headers"]:
                extras.append("headers: " + ", ".join(d["headers"]))
            if not d["enabled"]:
                extras.append(f"DISABLED: {d['disabled_reason']}")
            click.echo(
                f"#{d['id']:<4} {d['role']:<7} {d['format'] or d['scheme']:<9} {d['url']}"
                f"  timeout {d['timeout']}  retries {','.join(d['retry_schedule'])}"
                + (f"  [{'; '.join(extras)}]" if extras else "")
            )

    with_state(settings, go)


@destination.command("remove")
@click.argument("destination_id", type=int)
@settings_options(STORAGE_FIELDS)
def remove(destination_id: int, **kwargs: Any) -> None:
    """Remove a destination (pending deliveries move on to the next one in the chain)."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.write() as conn:
            found = await get_destination(conn, destination_id)
            if found is None:
                fail(f"no destination #{destination_id}")
                return
            await remove_destination(conn, destination_id)
        click.echo(f"Removed destination #{destination_id} ({redact_url(found.url)}).")

    with_state(settings, go)


@destination.command("test")
@click.argument("destination_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(FIELDS)
def test(destination_id: int, as_json: bool, **kwargs: Any) -> None:
    """Send a sample report to a destination now and print the receiver's answer."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            found = await get_destination(conn, destination_id)
        if found is None:
            fail(f"no destination #{destination_id}")
            return
        async with state.db.read() as conn:
            p = await get_project(conn, found.project_id)
        bundle = sample_bundle(p.name if p else "test", state.public_url)
        dest = found
        if found.format == "json" and "#" not in found.url:
            dest = dataclasses.replace(found, url=found.url + "#inline")  # no stored files to link
        sender = Sender(state)
        try:
            result = await sender.send(dest, bundle)
        finally:
            await sender.close()
        if as_json:
            print_json(
                {
                    "ok": result.ok,
                    "status_code": result.status_code,
                    "duration_ms": result.duration_ms,
                    "response_excerpt": result.response_excerpt,
                    "error": result.error,
                }
            )
        else:
            verdict = "OK" if result.ok else "FAILED"
            status = f"status {result.status_code}, " if result.status_code is not None else ""
            click.echo(f"{verdict}: {redact_url(found.url)} ({status}{result.duration_ms} ms)")
            if result.error:
                click.echo(f"error: {result.error}")
            if result.response_excerpt:
                click.echo("answer:")
                click.echo(result.response_excerpt)
        if not result.ok:
            raise SystemExit(1)

    with_state(settings, go)
