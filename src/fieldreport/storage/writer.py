"""The batch writer: the ingest paths' rows, many requests per transaction.

Every ingest request that must be durable before it is answered (a report, a session batch,
backend events) hands its rows to the process's one :class:`BatchWriter` and waits. One task
drains the queue: everything queued goes into one transaction (up to ``max_items``), and each
caller is answered only after that transaction has committed, so a 2xx still means "on disk".
There is no timer: a lone request is committed at once; while one transaction commits, the
next callers queue up and share the next one. With SQLite's ``synchronous=FULL`` a commit
costs a device flush, and on PostgreSQL a round trip and a WAL flush, so sharing commits is
what lets intake go past the commit rate.

A *job* is a plain synchronous function ``job(conn, items) -> results`` (one result per item,
in order) over a SQLAlchemy :class:`~sqlalchemy.engine.Connection`. Jobs of one kind in a
transaction run as one call, so they can use multi-row statements. Each call runs inside a
SAVEPOINT: when it raises, its items are retried one caller at a time, so one bad request
(say, its project was deleted a moment ago) fails alone and the others still commit.

* SQLite: the transaction runs in the writer's own thread on a synchronous connection
  (``BEGIN IMMEDIATE``), one thread hop per transaction instead of one per statement.
* PostgreSQL: the job runs through ``AsyncConnection.run_sync`` on a pooled asyncpg
  connection.

If the COMMIT fails, every caller of that transaction gets the error (its outcome may be
unknown: see ``ingest/accept.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from fieldreport.storage import driver
from fieldreport.storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[Connection, list[Any]], list[Any]]


@dataclass(eq=False, slots=True)
class _Entry:
    job: Job
    items: list[Any]
    future: asyncio.Future[list[Any]] = field(repr=False)


Outcome = list[Any] | Exception


class BatchWriter:
    def __init__(self, db: Database, *, max_items: int = 512) -> None:
        self._db = db
        self._max = max_items
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Entry] = deque()
        self._task: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None  # SQLite: the writer thread's connection
        self.transactions = 0  # committed, for tests and diagnostics
        self.items_written = 0

    async def submit(self, job: Callable[[Connection, list[T]], list[R]], item: T) -> R:
        """Write ``item`` with ``job`` in the next transaction; its result once committed."""
        return (await self.submit_many(job, [item]))[0]

    async def submit_many(
        self, job: Callable[[Connection, list[T]], list[R]], items: list[T]
    ) -> list[R]:
        """Write ``items`` together (they commit, or fail, as one); results in order."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # e.g. a CLI command or a test with its own asyncio.run()
            self._loop, self._pending, self._task = loop, deque(), None
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append(_Entry(job, list(items), future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="batch-writer")
        # A caller cancelled while it waits (client gone) cancels only its future: its rows
        # are queued and still commit with the others, and the drain skips its answer.
        return await future

    async def close(self) -> None:
        """Wait for queued writes, then release the writer thread and its connection."""
        task = self._task
        if task is not None and self._loop is asyncio.get_running_loop():
            await asyncio.shield(task)
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._drop_connection)
            thread.shutdown(wait=True)

    # --- the drain task ---------------------------------------------------------------------

    async def _drain(self) -> None:
        while self._pending:
            batch: list[_Entry] = []
            count = 0
            while self._pending and (not batch or count + len(self._pending[0].items) <= self._max):
                entry = self._pending.popleft()
                batch.append(entry)
                count += len(entry.items)
            try:
                outcomes = await self._transaction(batch)
            except Exception as exc:
                log.error("a write transaction of %d items failed: %s", count, exc)
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                continue
            self.transactions += 1
            for entry, outcome in zip(batch, outcomes, strict=True):
                if entry.future.done():
                    continue
                if isinstance(outcome, Exception):
                    entry.future.set_exception(outcome)
                else:
                    self.items_written += len(entry.items)
                    entry.future.set_result(outcome)

    async def _transaction(self, batch: list[_Entry]) -> list[Outcome]:
        if self._db.is_sqlite:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="fieldreport-writer")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._sqlite_transaction, batch)
        async with self._db.write() as conn:
            return await conn.run_sync(_apply, batch)

    def _sqlite_transaction(self, batch: list[_Entry]) -> list[Outcome]:
        """In the writer thread: one ``BEGIN IMMEDIATE`` ... ``COMMIT`` for the batch."""
        if self._conn is None:
            self._conn = self._db.sqlite_batch_engine().connect()
        try:
            with self._conn.begin():
                return _apply(self._conn, batch)
        except BaseException:
            self._drop_connection()  # start the next transaction on a fresh connection
            raise

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.warning("closing the writer's connection failed", exc_info=True)


def _apply(conn: Connection, batch: list[_Entry]) -> list[Outcome]:
    """Run the batch's jobs in the open transaction: one call per kind of job, each in a
    SAVEPOINT; a call that fails is retried caller by caller to isolate the bad one."""
    groups: dict[Job, list[_Entry]] = {}
    for entry in batch:
        groups.setdefault(entry.job, []).append(entry)
    outcomes: dict[_Entry, Outcome] = {}
    for job, entries in groups.items():
        try:
            results = _run(conn, job, [item for e in entries for item in e.items])
        except Exception as exc:
            if not _caused_by_the_items(exc):
                raise  # the connection or transaction is gone: the whole batch fails
            if len(entries) == 1:
                outcomes[entries[0]] = exc
                continue
            for entry in entries:
                try:
                    outcomes[entry] = _run(conn, job, entry.items)
                except Exception as one:
                    if not _caused_by_the_items(one):
                        raise
                    outcomes[entry] = one
            continue
        start = 0
        for entry in entries:
            outcomes[entry] = results[start : start + len(entry.items)]
            start += len(entry.items)
    return [outcomes[entry] for entry in batch]


def _caused_by_the_items(exc: Exception) -> bool:
    """An error that one request's rows can cause (a constraint, a bad value, a job's own
    check), after which the transaction is still usable; not a lost connection or a failed
    transaction, which fail every caller of the batch."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return not isinstance(exc, SQLAlchemyError)


def _run(conn: Connection, job: Job, items: list[Any]) -> list[Any]:
    # The savepoint as plain SQL on the driver's cursor: ``conn.begin_nested()`` compiles a
    # new statement for each savepoint name, ~0.1 ms a job, and ``exec_driver_sql`` costs
    # 30-50 µs a statement (see storage/driver.py). Jobs run one at a time, so one name
    # serves them all (a job's own savepoints nest inside it).
    driver.execute(conn, "SAVEPOINT batch_job")
    try:
        results = job(conn, items)
    except BaseException:
        # A lost connection (invalidated) has no savepoint to roll back to: trying would
        # replace the connection error, which fails the batch with a 503, by SQLAlchemy's
        # PendingRollbackError (seen as a 500 when PostgreSQL restarted under load).
        if not conn.invalidated:
            driver.execute(conn, "ROLLBACK TO SAVEPOINT batch_job")
        raise
    driver.execute(conn, "RELEASE SAVEPOINT batch_job")
    if len(results) != len(items):
        raise RuntimeError(f"{job.__qualname__} returned {len(results)} results for {len(items)}")
    return results
