"""Backend events through the batch writer, with admission control and the pending sweep.

Every ``/api/fullstack/v1/send`` request hands its events to :class:`EventWriter` and waits
until the transaction holding them has committed (the process's
:class:`~fieldreport.storage.writer.BatchWriter`, shared with reports and session batches),
so a success answer always means "durable". Under load thousands of requests share a few
dozen commits (SQLite with ``synchronous=FULL`` manages ~8k commits/s but ~180k rows/s in
groups of 100); when idle, an event is written at once, with no added delay.

This module adds what is particular to events: a bound on how many may wait (past it,
:class:`WriterOverloaded` -> 503), the key re-check inside the transaction (a rotated key
stops working at once even though the request path trusts a cached lookup), the memory of
recordings already known, and the sweep of pending events every ``sweep_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection

from fieldreport.storage.backend_events import NewEvent, StoreResult, store_events, sweep_pending
from fieldreport.storage.db import Database
from fieldreport.storage.projects import secret_owners
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.writer import BatchWriter

log = logging.getLogger(__name__)

# One event with the secret key hash its request came with (None: no key check).
_Item = tuple[NewEvent, str | None]


class WriterOverloaded(RuntimeError):
    """More events are queued than the writer accepts; answer 503 and let clients retry."""


class KeyRevoked(RuntimeError):
    """The secret key the events came with no longer belongs to their project (rotated)."""


class EventWriter:
    def __init__(
        self,
        writer: BatchWriter,
        db: Database,
        *,
        pending_ttl: timedelta,
        max_pending: int,
        max_queued: int = 50_000,
        sweep_every: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.writer = writer
        self.db = db
        self.pending_ttl = pending_ttl
        self.max_pending = max_pending
        self.max_queued = max_queued
        self.sweep_every = sweep_every
        self.clock = clock
        self._queued = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False
        # (project id, recording) pairs known to exist: skips two queries per transaction.
        # Only the write job touches it, and jobs run one at a time.
        self._known: set[tuple[int, str]] = set()
        self.events_written = 0

    @property
    def hold_unknown(self) -> bool:
        return self.pending_ttl > timedelta(0) and self.max_pending > 0

    def start(self) -> None:
        """Start sweeping pending events (while the server runs)."""
        if self._sweeper is None and not self._closing:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), name="pending-event-sweeper"
            )

    async def store(
        self, events: Sequence[NewEvent], *, key_hash: str | None = None
    ) -> list[StoreResult]:
        """Queue events and wait until they are committed (or refused). Raises
        :class:`WriterOverloaded`, or the database error that failed their transaction.

        With ``key_hash`` (the secret key the request came with), the transaction checks
        that the key still belongs to the events' project, so the request path may trust a
        cached key lookup: a key rotated meanwhile raises :class:`KeyRevoked`."""
        if self._closing:
            raise WriterOverloaded("the server is shutting down")
        count = len(events)
        if self._queued + count > self.max_queued:
            raise WriterOverloaded(f"{self._queued} events are waiting to be written")
        self._queued += count
        try:
            results = await self.writer.submit_many(self._write, [(e, key_hash) for e in events])
        finally:
            self._queued -= count
        for result in results:
            if result is None:
                raise KeyRevoked("the key was rotated or removed")
        self.events_written += count
        return cast(list[StoreResult], results)  # no None left

    async def stop(self) -> None:
        """Refuse new events and stop the sweeper; events already queued still commit."""
        self._closing = True
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    def _write(self, conn: Connection, items: list[_Item]) -> list[StoreResult | None]:
        """The batch writer's job: store the events whose key still holds (None for the
        others), in the writer's transaction."""
        hashes = {key_hash for _, key_hash in items if key_hash is not None}
        owners = secret_owners(conn, hashes)
        holds = [h is None or owners.get(h) == e.project_id for e, h in items]
        kept = [e for (e, _), ok in zip(items, holds, strict=True) if ok]
        stored = iter(
            store_events(
                conn,
                kept,
                now=self.clock(),
                hold_unknown=self.hold_unknown,
                max_pending=self.max_pending,
                known=self._known,
            )
        )
        if len(self._known) > 100_000:
            self._known.clear()
        return [next(stored) if ok else None for ok in holds]

    async def _sweep_forever(self) -> None:
        while True:
            await self._sweep()
            await asyncio.sleep(self.sweep_every)

    async def _sweep(self) -> None:
        try:
            async with self.db.write() as conn:
                swept = await sweep_pending(conn, now=self.clock(), ttl=self.pending_ttl)
        except Exception as exc:
            log.warning("sweeping pending backend events failed: %s", exc)
            return
        if swept.deleted:
            log.warning(
                "deleted %d backend events whose recording never started within %s",
                swept.deleted,
                self.pending_ttl,
            )
