"""``fieldreport delivery ...`` (inspection and redelivery) and ``fieldreport worker``."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from typing import Any

import click

from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    optional_project_id,
    pop_settings,
    print_json,
    settings_options,
    with_state,
)
from fieldreport.delivery.views import attempt_dict, delivery_dict
from fieldreport.delivery.worker import Worker
from fieldreport.gc_tuning import settle_after_startup
from fieldreport.logs import configure as configure_logging
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.deliveries import (
    STATUSES,
    attempts_of,
    dead_ids,
    get_delivery,
    list_deliveries,
    requeue,
)
from fieldreport.storage.schema.base import utcnow
from fieldreport.units import parse_duration

WORKER_FIELDS = (
    *STORAGE_FIELDS,
    "allow_private_destinations",
    "delivery_concurrency",
    "delivery_per_destination",
    "delivery_lease",
    "delivery_poll_interval",
    "database_wait",
    "delivery_link_ttl",
    "log_level",
    "log_format",
    "shutdown_timeout",
)


@click.group()
def delivery() -> None:
    """Inspect deliveries (every attempt) and deliver again."""


@delivery.command("list")
@click.option("--project", default=None, help="Only this project (name or id).")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(
    project: str | None, status: str | None, limit: int, as_json: bool, **kwargs: Any
) -> None:
    """List deliveries, newest first."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        project_id = await optional_project_id(state, project)
        async with state.db.read() as conn:
            found = await list_deliveries(conn, project_id=project_id, status=status, limit=limit)
        items = [delivery_dict(d) for d in found]
        if as_json:
            print_json(items)
            return
        if not items:
            click.echo("no deliveries")
        for d in items:
            when = d["delivered_at"] or d["next_attempt_at"] or d["updated_at"]
            error = f"  {d['last_error']}" if d["last_error"] and d["status"] != "delivered" else ""
            click.echo(
                f"{d['id']:>6}  {d['status']:<9} {d['project']} #{d['ticketnr']}  "
                f"attempts {d['total_attempts']}  {when}{error}"
            )

    with_state(settings, go)


@delivery.command("show")
@click.argument("delivery_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def show(delivery_id: int, as_json: bool, **kwargs: Any) -> None:
    """Show a delivery and every attempt."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            found = await get_delivery(conn, delivery_id)
            attempts = await attempts_of(conn, delivery_id) if found else []
        if found is None:
            fail(f"no delivery {delivery_id}")
            return
        data = delivery_dict(found)
        data["attempts_log"] = [attempt_dict(a) for a in attempts]
        if as_json:
            print_json(data)
            return
        click.echo(
            f"delivery {data['id']}: {data['status']}  report {data['reportid']} "
            f"({data['project']} #{data['ticketnr']})"
        )
        if data["next_attempt_at"] and data["status"] in ("pending", "failed"):
            click.echo(f"next attempt at {data['next_attempt_at']}")
        for a in data["attempts_log"]:
            status = a["status_code"] if a["status_code"] is not None else "-"
            took = f"{a['duration_ms']} ms" if a["duration_ms"] is not None else "-"
            click.echo(
                f"  {a['started_at']}  {a['outcome']:<9} status {status}  {took}  "
                f"{a['destination']}"
            )
            if a["error"]:
                click.echo(f"      error: {a['error']}")
            if a["response_excerpt"]:
                excerpt = a["response_excerpt"].replace("\n", " ")[:200]
                click.echo(f"      answer: {excerpt}")

    with_state(settings, go)


@delivery.command("retry")
@click.argument("delivery_id", type=int, required=False)
@click.option("--dead", is_flag=True, help="Retry every dead delivery (with --since).")
@click.option("--since", default=None, help="With --dead: only those that died within, e.g. 2h.")
@click.option("--project", default=None, help="With --dead: only this project.")
@settings_options(STORAGE_FIELDS)
def retry(
    delivery_id: int | None, dead: bool, since: str | None, project: str | None, **kwargs: Any
) -> None:
    """Deliver again from the start of the chain: one delivery (ID), or --dead ones."""
    settings = pop_settings(kwargs)
    if (delivery_id is None) == (not dead):
        raise click.UsageError("give a delivery ID, or --dead [--since 2h]")
    window = None
    if since is not None:
        if not dead:
            raise click.UsageError("--since goes with --dead")
        try:
            window = parse_duration(since)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--since") from None

    async def go(state: AppState) -> None:
        now = utcnow()
        if delivery_id is not None:
            async with state.db.write() as conn:
                ok = await requeue(conn, delivery_id, now)
            if not ok:
                fail(f"no delivery {delivery_id}, or its project has no enabled destination")
            click.echo(f"delivery {delivery_id} queued again")
            return
        project_id = await optional_project_id(state, project)
        async with state.db.read() as conn:
            since_at = now - timedelta(seconds=window) if window is not None else None
            ids = await dead_ids(conn, since=since_at, project_id=project_id)
        queued = 0
        with click.progressbar(ids, label="queueing dead deliveries", show_pos=True) as bar:
            for chunk_start in range(0, len(ids), 200):
                chunk = ids[chunk_start : chunk_start + 200]
                async with state.db.write() as conn:
                    for one in chunk:
                        queued += await requeue(conn, one, now)
                bar.update(len(chunk))
        click.echo(f"{queued} of {len(ids)} dead deliveries queued again")

    with_state(settings, go)


async def _run_worker(settings: Settings) -> None:
    state = await open_state(settings, wait=settings.database_wait)
    worker = Worker(state)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop, settings.shutdown_timeout)
    click.echo(f"fieldreport worker {worker.name}: delivering ({state.db.dialect})")
    settle_after_startup()  # as ``serve`` does (see fieldreport.gc_tuning)
    try:
        await worker.run()
    finally:
        await state.close()


@click.command()
@settings_options(WORKER_FIELDS)
def worker(**kwargs: Any) -> None:
    """Run a delivery worker (no HTTP server); any number may share a PostgreSQL database.

    SIGTERM or SIGINT stops it: sends in flight finish first (up to the shutdown timeout).
    """
    settings = pop_settings(kwargs)
    configure_logging(settings.log_level, settings.log_format)
    import uvloop

    uvloop.run(_run_worker(settings))
