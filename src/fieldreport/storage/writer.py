"""The batch writer: the ingest paths' rows, many requests per transaction.

Every ingest request that must be durable before it is answered (a report, a session batch,
backend events) hands its rows to the process's one :class:`BatchWriter` and waits. The
writer's thread drains the queue: everything queued goes into one transaction (up to
``max_items``), each caller is answered only after that transaction has committed, so a 2xx
still means "on disk", and the thread goes straight on to the next group: no trip through
the event loop between transactions (under load the loop answered ~1.5-13 ms late, and the
writer sat idle meanwhile). A caller may queue its rows behind a gate (``after``): a report's
rows are queued by the blob flusher's thread as the ``syncfs`` covering its files ends.
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
import contextlib
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from fieldreport.storage import driver
from fieldreport.storage.db import Database
from fieldreport.storage.writer_turns import WriterTurns

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[Connection, list[Any]], list[Any]]


@dataclass(eq=False, slots=True)
class _Entry:
    job: Job
    items: list[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Any]] = field(repr=False)


Outcome = list[Any] | Exception

#: What :meth:`BatchWriter.submit_many` may wait for before it queues its rows: called with
#: a callback that it calls (on any thread) with ``None`` when the rows may go, or with the
#: error that fails them (:meth:`BlobStore.after_flush`).
Gate = Callable[[Callable[[Exception | None], None]], None]


class BatchWriter:
    def __init__(self, db: Database, *, max_items: int = 512) -> None:
        self._db = db
        self._max = max_items
        # Filled from the event loop (and from a gate's thread), drained by the writer thread.
        self._lock = threading.Lock()
        self._pending: deque[_Entry] = deque()
        self._running = False  # a drain is queued or running on the writer thread
        self._idle = threading.Condition(self._lock)
        self._thread: ThreadPoolExecutor | None = None
        self._conn: Connection | None = None  # the writer thread's connection
        self._committing = False  # the writer thread's transaction has sent its COMMIT
        self._turns = WriterTurns(db.sqlite_file)  # with other processes' writers
        # Counted by the writer thread alone (plain ints, read by /metrics at scrape time):
        self.transactions = 0  # committed
        self.transactions_failed = 0  # failed as a whole (every job in them failed)
        self.jobs_written = 0  # submit/submit_many calls whose items committed
        self.jobs_failed = 0  # ... answered with an error instead
        self.items_written = 0  # the committed jobs' items (an event, a report, ...)

    async def submit(
        self, job: Callable[[Connection, list[T]], list[R]], item: T, *, after: Gate | None = None
    ) -> R:
        """Write ``item`` with ``job`` in the next transaction; its result once committed."""
        return (await self.submit_many(job, [item], after=after))[0]

    def submit_many(
        self,
        job: Callable[[Connection, list[T]], list[R]],
        items: list[T],
        *,
        after: Gate | None = None,
    ) -> asyncio.Future[list[R]]:
        """Write ``items`` together (they commit, or fail, as one): await the returned future
        for the results, in order, once committed.

        ``after``: queue them only once that gate opens (the blobs they name are durable),
        straight from the thread that opens it, with no trip through the event loop; its
        error is raised by the future and nothing is written.

        A plain function returning the future, not a coroutine: awaiting it is the same for
        callers, without a coroutine and its frame per request between them and the
        future (every session batch and events request comes through here)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        entry = _Entry(job, list(items), loop, future)
        if after is None:
            if self._queue(entry):
                # Started once this turn of the loop is over: what the other requests
                # ready now submit goes into the same transaction.
                loop.call_soon(self._start)
        else:
            after(functools.partial(self._queue_unless, entry))
        # A caller cancelled while it waits (client gone) cancels only its future: its rows
        # are queued (or will be, once the gate opens) and still commit with the others.
        return future

    async def close(self) -> None:
        """Wait for queued writes, then release the writer thread and its connection."""
        while self._running:
            await asyncio.to_thread(self._wait_idle)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._drop_connection)
            thread.shutdown(wait=True)
        self._turns.close()

    def _wait_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: not self._running, timeout=1.0)

    # --- the queue, drained on the writer thread --------------------------------------------

    def _queue_unless(self, entry: _Entry, error: Exception | None) -> None:
        """A gate's answer (on its thread): queue ``entry``, or fail it with ``error``."""
        if error is not None:
            _answer(entry.loop, [(entry, error)])
        elif self._queue(entry):
            self._start()

    def _queue(self, entry: _Entry) -> bool:
        """Add ``entry`` (from any thread); whether the caller must :meth:`_start` a drain
        (none is running or about to)."""
        with self._lock:
            self._pending.append(entry)
            if self._running:
                return False  # the drain takes it in its next transaction
            self._running = True
            return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="fieldreport-writer")
            thread = self._thread
        thread.submit(self._drain)

    def _drain(self) -> None:
        """On the writer thread: one transaction after another while rows are queued, each
        batch answered as it commits (one hand-off to each caller's loop per transaction)."""
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    self._idle.notify_all()
                    return
                batch = self._take()
            try:
                outcomes: list[Outcome] = self._thread_transaction(batch)
            except Exception as exc:
                log.error("a write transaction of %d requests failed: %s", len(batch), exc)
                outcomes = [exc] * len(batch)
                self.transactions_failed += 1
                self.jobs_failed += len(batch)
            else:
                self.transactions += 1
                jobs = items = 0
                for e, o in zip(batch, outcomes, strict=True):
                    if type(o) is list:
                        jobs += 1
                        items += len(e.items)
                self.jobs_written += jobs
                self.jobs_failed += len(batch) - jobs
                self.items_written += items
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Entry, Outcome]]] = {}
            for entry, outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(entry.loop, []).append((entry, outcome))
            for loop, answers in by_loop.items():
                _answer(loop, answers)

    def _take(self) -> list[_Entry]:
        """The next batch: queued entries up to ``max_items`` items (at least one entry)."""
        pending = self._pending
        batch = [pending.popleft()]
        count = len(batch[0].items)
        while pending and count + len(pending[0].items) <= self._max:
            entry = pending.popleft()
            batch.append(entry)
            count += len(entry.items)
        return batch

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
        with self._turns.turn():
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
        conn = self._conn
        self._committing = False
        try:
            if conn.dialect.name != "postgresql":
                with conn.begin():
                    outcomes = _apply(conn, batch)
                    self._committing = True  # the COMMIT goes out as the block ends
                return outcomes
            # PostgreSQL: the writer begins (with the first SAVEPOINT) and commits itself,
            # on libpq (_Savepoints); SQLAlchemy's transaction is not used.
            outcomes = _apply(conn, batch)
            self._committing = True
            driver.pg_command(conn, b"COMMIT")
            if conn.in_transaction():  # a job ran a Core statement, which began one
                conn.commit()  # nothing is sent: psycopg finds no transaction open
            return outcomes
        except BaseException:
            # Start the next transaction on a fresh connection; closing this one rolls
            # back what is still open (SQLAlchemy's reset, or psycopg's on return).
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.warning("closing the writer's connection failed", exc_info=True)


def _answer(loop: asyncio.AbstractEventLoop, answers: list[tuple[_Entry, Outcome]]) -> None:
    """From the writer (or a gate's) thread: settle the callers' futures on their loop."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(_settle, answers)


def _settle(answers: list[tuple[_Entry, Outcome]]) -> None:
    for entry, outcome in answers:
        if entry.future.done():  # its caller was cancelled
            continue
        if isinstance(outcome, Exception):
            entry.future.set_exception(outcome)
        else:
            entry.future.set_result(outcome)


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
    """The SAVEPOINT around each job of one transaction, as plain SQL: ``conn.begin_nested()``
    compiles a new statement for each savepoint name, ~0.1 ms a job, and ``exec_driver_sql``
    costs 30-50 µs a statement (see storage/driver.py). Jobs run one at a time, so one name
    serves them all (a job's own savepoints nest inside it). SQLite: on the driver's cursor.

    PostgreSQL: straight on libpq (:func:`driver.pg_command`), with the writer's ``COMMIT``.
    Each statement is a round trip, paid in the writer thread and by the server: the
    connection is in autocommit mode and the transaction's ``BEGIN`` goes out with the first
    ``SAVEPOINT`` (one simple query), and a job's ``RELEASE`` with the next job's
    ``SAVEPOINT`` or not at all (the COMMIT releases it). An events transaction is then four
    round trips (begin and savepoint, key check, insert, commit), not six.
    """

    __slots__ = ("conn", "fold", "prefix")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fold = conn.dialect.name == "postgresql"  # see Database.batch_engine
        self.prefix = b"BEGIN; " if self.fold else b""

    def open(self) -> None:
        if self.fold:
            driver.pg_command(self.conn, self.prefix + b"SAVEPOINT batch_job")
            self.prefix = b""
        else:
            driver.execute(self.conn, "SAVEPOINT batch_job")

    def release(self) -> None:
        if self.fold:
            self.prefix = b"RELEASE SAVEPOINT batch_job; "
        else:
            driver.execute(self.conn, "RELEASE SAVEPOINT batch_job")

    def roll_back(self) -> None:
        if self.fold:
            driver.pg_command(self.conn, b"ROLLBACK TO SAVEPOINT batch_job")
        else:
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
