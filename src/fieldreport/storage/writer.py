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

The transaction runs in the writer's own thread, start to end, on a synchronous connection
the writer keeps (:meth:`Database.batch_engine`): one thread hop per transaction instead of
one per statement, and the driver's work and its waits off the event loop.

* SQLite: pysqlite, ``BEGIN IMMEDIATE``.
* PostgreSQL: psycopg (the rest of the server uses asyncpg). It ran through asyncpg's
  adaptation on the event loop (``run_sync`` on a pooled connection): a checkout with its
  ping (three round trips) and then every statement's round trip cost the loop thread
  ~900 µs per transaction, and its socket work held the GIL; psycopg does it in this thread
  and releases the GIL while libpq sends and waits. In-process, 8 events a transaction:
  185 -> 22 µs of loop CPU per event, 185 -> 103 µs of process CPU; server CPU per request
  (``bench.cpu_cost``, 3 alternating runs) events 165-186 -> 160-189 µs, of which the loop
  thread 164-186 -> 99-122, session batches 258-284 -> 234-249, loop 256-282 -> 172-182.

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
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

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
        self._conn: Connection | None = None  # the writer thread's connection
        self._committing = False  # the writer thread's transaction has sent its COMMIT
        self.transactions = 0  # committed, for tests and diagnostics
        self.items_written = 0

    async def submit(self, job: Callable[[Connection, list[T]], list[R]], item: T) -> R:
        """Write ``item`` with ``job`` in the next transaction; its result once committed."""
        return (await self.submit_many(job, [item]))[0]

    def submit_many(
        self, job: Callable[[Connection, list[T]], list[R]], items: list[T]
    ) -> asyncio.Future[list[R]]:
        """Write ``items`` together (they commit, or fail, as one): await the returned future
        for the results, in order, once committed.

        A plain function returning the future, not a coroutine: awaiting it is the same for
        callers, without a coroutine and its frame per request between them and the
        future (every session batch and events request comes through here)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # e.g. a CLI command or a test with its own asyncio.run()
            self._loop, self._pending, self._task = loop, deque(), None
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append(_Entry(job, list(items), future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="batch-writer")
        # A caller cancelled while it waits (client gone) cancels only its future: its rows
        # are queued and still commit with the others, and the drain skips its answer.
        return future

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
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="fieldreport-writer")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._thread_transaction, batch)

    def _thread_transaction(self, batch: list[_Entry]) -> list[Outcome]:
        """In the writer thread: one transaction for the batch (``BEGIN IMMEDIATE`` on
        SQLite) ... ``COMMIT``.

        The connection is kept from one transaction to the next, so it is not checked
        before each one (a pool's ping would cost a round trip per transaction). A kept
        connection found lost before the COMMIT was sent (say, PostgreSQL restarted while
        the writer was idle) committed nothing: the batch is run once more on a fresh
        connection, as a ping on checkout would have let it. A loss during the COMMIT, of
        unknown outcome, is never retried."""
        kept = self._conn is not None
        try:
            return self._transaction_once(batch)
        except DBAPIError as exc:
            if not (kept and exc.connection_invalidated and not self._committing):
                raise
            log.warning("the writer's database connection was lost (%s); reconnecting", exc)
        return self._transaction_once(batch)

    def _transaction_once(self, batch: list[_Entry]) -> list[Outcome]:
        if self._conn is None:
            self._conn = self._db.batch_engine().connect()
        self._committing = False
        try:
            with self._conn.begin():
                outcomes = _apply(self._conn, batch)
                self._committing = True  # the COMMIT goes out as the block ends
            return outcomes
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
    frame = _Savepoints(conn)
    groups: dict[Job, list[_Entry]] = {}
    for entry in batch:
        groups.setdefault(entry.job, []).append(entry)
    outcomes: dict[_Entry, Outcome] = {}
    for job, entries in groups.items():
        try:
            results = _run(conn, frame, job, [item for e in entries for item in e.items])
        except Exception as exc:
            if not _caused_by_the_items(exc):
                raise  # the connection or transaction is gone: the whole batch fails
            if len(entries) == 1:
                outcomes[entries[0]] = exc
                continue
            for entry in entries:
                try:
                    outcomes[entry] = _run(conn, frame, job, entry.items)
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


class _Savepoints:
    """The SAVEPOINT around each job of one transaction, as plain SQL on the driver's cursor:
    ``conn.begin_nested()`` compiles a new statement for each savepoint name, ~0.1 ms a job,
    and ``exec_driver_sql`` costs 30-50 µs a statement (see storage/driver.py). Jobs run one
    at a time, so one name serves them all (a job's own savepoints nest inside it).

    On PostgreSQL each statement is a round trip, paid in the writer thread and by the
    server: the connection is in autocommit mode and the transaction's ``BEGIN`` goes out
    with the first ``SAVEPOINT`` (one simple query), and a job's ``RELEASE`` with the next
    job's ``SAVEPOINT`` or not at all (the COMMIT releases it). An events transaction
    is then four round trips (begin and savepoint, key check, insert, commit), not six.
    """

    __slots__ = ("conn", "fold", "prefix")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fold = conn.dialect.name == "postgresql"  # see Database.batch_engine
        self.prefix = "BEGIN; " if self.fold else ""

    def open(self) -> None:
        if self.fold:  # no parameters: the simple query protocol, which takes two statements
            driver.execute(self.conn, f"{self.prefix}SAVEPOINT batch_job", None)
            self.prefix = ""
        else:
            driver.execute(self.conn, "SAVEPOINT batch_job")

    def release(self) -> None:
        if self.fold:
            self.prefix = "RELEASE SAVEPOINT batch_job; "
        else:
            driver.execute(self.conn, "RELEASE SAVEPOINT batch_job")

    def roll_back(self) -> None:
        driver.execute(self.conn, "ROLLBACK TO SAVEPOINT batch_job")


def _run(conn: Connection, frame: _Savepoints, job: Job, items: list[Any]) -> list[Any]:
    frame.open()
    try:
        results = job(conn, items)
    except BaseException:
        # A lost connection (invalidated) has no savepoint to roll back to: trying would
        # replace the connection error, which fails the batch with a 503, by SQLAlchemy's
        # PendingRollbackError (seen as a 500 when PostgreSQL restarted under load).
        if not conn.invalidated:
            frame.roll_back()
        raise
    frame.release()
    if len(results) != len(items):
        raise RuntimeError(f"{job.__qualname__} returned {len(results)} results for {len(items)}")
    return results
