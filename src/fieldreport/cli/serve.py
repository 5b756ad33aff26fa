"""``fieldreport serve`` and ``fieldreport migrate``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import click
import uvicorn

from fieldreport.app import create_app
from fieldreport.cli.common import STORAGE_FIELDS, pop_settings, settings_options, with_state
from fieldreport.delivery.worker import worker_service
from fieldreport.ingest.session_tokens import load_secret
from fieldreport.logs import configure as configure_logging
from fieldreport.retention import start_retention
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.projects import list_projects


async def _serve(settings: Settings, *, with_worker: bool = True) -> None:
    state = await open_state(settings, wait=settings.database_wait)
    try:
        async with state.db.read() as conn:
            has_projects = bool(await list_projects(conn))
        url = settings.effective_public_url
        click.echo(f"fieldreport: database {state.db.dialect} ready, blobs at {state.blobs.url}")
        if not has_projects:
            flags = f" --data-dir {settings.data_dir}" if not settings.database_url else ""
            click.echo(
                "fieldreport: no projects yet. Create one to get its keys:\n"
                f"    fieldreport project create my-app{flags}\n"
                "  then embed the public key in your app and send reports to "
                f"{url}/api/v1/reports (API docs: {url}/docs)\n"
                "  and create a dashboard login:\n"
                f"    fieldreport user create you@example.com --admin{flags}   ({url}/login)"
            )
        load_secret(settings)  # created in the data dir on first start unless set
        services = [start_retention, *([worker_service()] if with_worker else [])]
        app = create_app(settings, state=state, services=services, freeze_gc=True)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,
            # uvicorn formats each access log line's arguments (client address, quoted
            # path) before the logger drops them below INFO: only ask for lines that print.
            access_log=_level(settings.log_level) <= logging.INFO,
            timeout_graceful_shutdown=int(settings.shutdown_timeout),
            server_header=False,
            proxy_headers=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        _graceful_signals(server)
        await server.serve()
        click.echo("fieldreport: stopped")
    finally:
        await state.close()


def _level(name: str) -> int:
    """A log level's number (an unknown name counts as INFO: its access lines are kept)."""
    level = logging.getLevelName(name.upper())
    return level if isinstance(level, int) else logging.INFO


def _graceful_signals(server: uvicorn.Server) -> None:
    """SIGTERM/SIGINT: stop accepting, let in-flight requests finish, exit 0.
    A second signal forces the exit."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]


@click.command()
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not run the delivery worker in this process (run `fieldreport worker` elsewhere).",
)
@settings_options()
def serve(no_worker: bool, **kwargs: Any) -> None:
    """Run the HTTP server (ingest, API, docs at /docs).

    With no settings it runs embedded: SQLite and blobs in ./fieldreport-data.
    SIGTERM or SIGINT stops it gracefully: in-flight requests finish first.
    """
    settings = pop_settings(kwargs)
    configure_logging(settings.log_level, settings.log_format)
    import uvloop

    uvloop.run(_serve(settings, with_worker=not no_worker))


@click.command()
@settings_options(STORAGE_FIELDS)
def migrate(**kwargs: Any) -> None:
    """Create or upgrade the database schema (serve and every command also do this)."""
    settings = pop_settings(kwargs)

    async def done(state: AppState) -> None:
        click.echo(f"database is up to date ({state.db.dialect})")

    with_state(settings, done)
