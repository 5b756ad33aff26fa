"""Waking workers in other processes (PostgreSQL): the report's transaction sends
``NOTIFY fieldreport_deliveries`` and every worker LISTENs on a connection of its own, so a
``serve --no-worker`` process's reports are picked up at once instead of at the next poll.
On SQLite (one process) the in-process event does the same; polling remains the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

CHANNEL = "fieldreport_deliveries"  # NOTIFY'd by storage.deliveries.enqueue_report
log = logging.getLogger(__name__)


class Listener:
    """LISTEN on a dedicated asyncpg connection; sets ``event`` on every notification."""

    def __init__(self, database_url: str, event: asyncio.Event) -> None:
        url = make_url(database_url)
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._event = event
        self._conn: Any = None

    async def start(self) -> bool:
        import asyncpg  # type: ignore[import-untyped]

        try:
            self._conn = await asyncpg.connect(self._dsn, timeout=10)
            await self._conn.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("delivery worker: cannot LISTEN (%s); polling only", type(exc).__name__)
            self._conn = None
            return False
        return True

    def _on_notify(self, *_args: object) -> None:
        self._event.set()

    @property
    def alive(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
