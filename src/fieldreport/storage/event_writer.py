"""Group commit for backend events: many requests' rows in one transaction.

Every ``/api/fullstack/v1/send`` request hands its event to :class:`EventWriter` and waits
until the transaction holding it has committed, so a success answer always means "durable".
One task writes: while a transaction commits, new events queue up and all of them go into
the next one. Under load that turns thousands of commits per second into a few dozen
(SQLite with ``synchronous=FULL`` manages ~8k commits/s but ~180k rows/s in groups of 100);
when idle, an event is written at once, with no added delay.

The same task sweeps pending events (recording not known yet) every ``sweep_every`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.backend_events import NewEvent, StoreResult, store_events, sweep_pending
from fieldreport.storage.db import Database
from fieldreport.storage.projects import projects_for_secret_hashes
from fieldreport.storage.schema.base import utcnow

log = logging.getLogger(__name__)


class WriterOverloaded(RuntimeError):
    """More events are queued than the writer accepts; answer 503 and let clients retry."""


class KeyRevoked(RuntimeError):
    """The secret key the events came with no longer belongs to their project (rotated)."""


@dataclass
class _Job:
    events: Sequence[NewEvent]
    key_hash: str | None
    future: asyncio.Future[list[StoreResult]] = field(repr=False)


class EventWriter:
    def __init__(
        self,
        db: Database,
        *,
        pending_ttl: timedelta,
        max_pending: int,
        max_group: int = 1000,
        max_queued: int = 50_000,
        sweep_every: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.pending_ttl = pending_ttl
        self.max_pending = max_pending
        self.max_group = max_group
        self.max_queued = max_queued
        self.sweep_every = sweep_every
        self.clock = clock
        self._jobs: deque[_Job] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # (project id, recording) pairs known to exist: skips two queries per group.
        self._known: set[tuple[int, str]] = set()
        self.groups_written = 0
        self.events_written = 0

    @property
    def hold_unknown(self) -> bool:
        return self.pending_ttl > timedelta(0) and self.max_pending > 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-writer")

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
        if self._queued + len(events) > self.max_queued:
            raise WriterOverloaded(f"{self._queued} events are waiting to be written")
        self.start()
        future: asyncio.Future[list[StoreResult]] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(events, key_hash, future))
        self._queued += len(events)
        self._wake.set()
        return await future

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        try:
            await asyncio.wait_for(task, 30)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in self._jobs:  # only left if the final writes timed out
            if not job.future.done():
                job.future.set_exception(WriterOverloaded("the server is shutting down"))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_sweep - loop.time()))
            if self._jobs:
                await self._write_group()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + self.sweep_every
                await self._sweep()

    def _take_group(self) -> list[_Job]:
        group: list[_Job] = []
        size = 0
        while self._jobs and (not group or size + len(self._jobs[0].events) <= self.max_group):
            job = self._jobs.popleft()
            group.append(job)
            size += len(job.events)
        return group

    async def _write_group(self) -> None:
        group = self._take_group()
        queued = sum(len(job.events) for job in group)
        try:
            async with self.db.write() as conn:
                group = await self._drop_revoked(conn, group)
                events = [e for job in group for e in job.events]
                results = await store_events(
                    conn,
                    events,
                    now=self.clock(),
                    hold_unknown=self.hold_unknown,
                    max_pending=self.max_pending,
                    known=self._known,
                )
            if len(self._known) > 100_000:
                self._known.clear()
        except Exception as exc:
            log.error("writing %d backend events failed: %s", queued, exc)
            for job in group:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        finally:
            self._queued -= queued
        self.groups_written += 1
        self.events_written += len(events)
        start = 0
        for job in group:
            end = start + len(job.events)
            if not job.future.done():  # the request may have been cancelled meanwhile
                job.future.set_result(results[start:end])
            start = end

    async def _drop_revoked(self, conn: AsyncConnection, group: list[_Job]) -> list[_Job]:
        hashes = {job.key_hash for job in group if job.key_hash is not None}
        if not hashes:
            return group
        owners = await projects_for_secret_hashes(conn, hashes)
        kept: list[_Job] = []
        for job in group:
            if job.key_hash is not None and any(
                owners.get(job.key_hash) != e.project_id for e in job.events
            ):
                if not job.future.done():
                    job.future.set_exception(KeyRevoked("the key was rotated or removed"))
            else:
                kept.append(job)
        return kept

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
