"""The batch writer: concurrent callers share transactions, each answered after its commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from fieldreport.storage.db import Database
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.projects import list_projects
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.core import projects
from fieldreport.storage.writer import BatchWriter, Gate


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[BatchWriter]:
    batch_writer = BatchWriter(db)
    yield batch_writer
    await batch_writer.close()


def add_projects(conn: Connection, names: list[str]) -> list[int]:
    """A job: one multi-row insert; a name starting with "!" makes the call fail."""
    if any(n.startswith("!") for n in names):
        raise ValueError("refused: " + ",".join(n for n in names if n.startswith("!")))
    ids = []
    for name in names:  # one statement per row keeps the ids in order on both backends
        result = conn.execute(
            projects.insert()
            .values(
                name=name,
                public_key_hash=f"p-{name}",
                secret_key_hash=f"s-{name}",
                public_key_hint="p",
                secret_key_hint="s",
                created_at=utcnow(),
            )
            .returning(projects.c.id)
        )
        ids.append(int(result.scalar_one()))
    return ids


def commit_engine(db: Database) -> Engine:
    return db.batch_engine()


async def names(db: Database) -> list[str]:
    async with db.read() as conn:
        return sorted(p.name for p in await list_projects(conn))


async def test_concurrent_callers_share_transactions_and_see_their_results(
    db: Database, writer: BatchWriter
) -> None:
    commits = [0]

    @sa.event.listens_for(commit_engine(db), "commit")
    def _count(_conn: object) -> None:
        commits[0] += 1

    ids = await asyncio.gather(*(writer.submit(add_projects, f"p{i}") for i in range(40)))
    assert len(set(ids)) == 40
    assert await names(db) == sorted(f"p{i}" for i in range(40))  # committed when answered
    assert 1 <= writer.transactions == commits[0] < 40
    assert writer.items_written == writer.jobs_written == 40
    assert writer.jobs_failed == writer.transactions_failed == 0


async def test_jobs_run_in_the_writer_thread_on_its_synchronous_driver(
    db: Database, writer: BatchWriter
) -> None:
    """On both backends the transaction runs in the writer's own thread, on pysqlite or
    psycopg (not asyncpg's adaptation on the event loop), on one connection kept across
    transactions."""
    seen: list[tuple[str, str, int]] = []

    def where(conn: Connection, items: list[int]) -> list[int]:
        dbapi_conn = conn.connection.dbapi_connection
        seen.append((threading.current_thread().name, conn.dialect.driver, id(dbapi_conn)))
        return items

    await writer.submit(where, 1)
    await writer.submit(where, 2)
    assert [s[0].startswith("fieldreport-writer") for s in seen] == [True, True]
    assert {s[1] for s in seen} == {"pysqlite" if db.is_sqlite else "psycopg"}
    assert seen[0][2] == seen[1][2]


async def test_a_failing_caller_fails_alone(db: Database, writer: BatchWriter) -> None:
    await writer.submit(add_projects, "taken")
    outcomes = await asyncio.gather(
        writer.submit(add_projects, "ok1"),
        writer.submit(add_projects, "!bad"),
        writer.submit(add_projects, "ok2"),
        writer.submit(add_projects, "taken"),  # unique violation inside its own savepoint
        writer.submit_many(add_projects, ["ok3", "ok4"]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[3], sa.exc.IntegrityError)
    assert isinstance(outcomes[4], list) and len(outcomes[4]) == 2
    assert await names(db) == ["ok1", "ok2", "ok3", "ok4", "taken"]
    # counted for /metrics: a submit_many is one job; the two refused ones failed alone
    assert (writer.jobs_written, writer.jobs_failed, writer.items_written) == (4, 2, 5)
    assert writer.transactions_failed == 0


async def test_jobs_of_several_kinds_share_a_transaction_each_in_its_savepoint(
    db: Database, writer: BatchWriter
) -> None:
    """Three kinds of job in one transaction, the middle one failing on its rows: the others
    commit (on PostgreSQL the first savepoint goes out with BEGIN, and each RELEASE with the
    next SAVEPOINT)."""

    def add_more(conn: Connection, names: list[str]) -> list[int]:
        return add_projects(conn, names)

    def add_taken(conn: Connection, names: list[str]) -> list[int]:
        return add_projects(conn, ["first"])  # unique violation: "first" is in this transaction

    outcomes = await asyncio.gather(
        writer.submit(add_projects, "first"),
        writer.submit(add_taken, "x"),
        writer.submit(add_more, "third"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert isinstance(outcomes[0], int) and isinstance(outcomes[2], int)
    assert writer.transactions == 1
    assert await names(db) == ["first", "third"]


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)  # PostgreSQL: the next test
async def test_a_failed_commit_fails_every_caller_then_recovers(
    db: Database, writer: BatchWriter
) -> None:
    engine = commit_engine(db)

    def _fail(_conn: object) -> None:  # the one fault we cannot cause for real on demand
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    sa.event.listen(engine, "commit", _fail)
    outcomes = await asyncio.gather(
        *(writer.submit(add_projects, f"lost{i}") for i in range(5)), return_exceptions=True
    )
    sa.event.remove(engine, "commit", _fail)
    assert all(isinstance(o, sa.exc.OperationalError) for o in outcomes)
    assert await names(db) == []
    failed = writer.transactions_failed
    assert 1 <= failed <= 5 and writer.jobs_failed == 5 and writer.transactions == 0
    await writer.submit(add_projects, "after")
    assert await names(db) == ["after"]
    assert (writer.transactions, writer.jobs_written, writer.transactions_failed) == (1, 1, failed)


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)  # a deferred constraint
async def test_a_constraint_failing_at_commit_fails_every_caller_then_recovers(
    db: Database, writer: BatchWriter
) -> None:
    """PostgreSQL, for real: a deferred foreign key is only checked by the COMMIT (sent on
    libpq by the writer). Every caller of that transaction gets SQLAlchemy's IntegrityError
    (the connection is fine, not invalidated), nothing is committed, and the next batch
    commits."""
    async with db.write() as conn:
        await conn.execute(
            sa.text(
                "CREATE TABLE deferred_child (id integer PRIMARY KEY, parent integer"
                " REFERENCES projects (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )

    def dangling(conn: Connection, items: list[int]) -> list[int]:
        for item in items:
            conn.exec_driver_sql(f"INSERT INTO deferred_child VALUES ({item}, -{item})")
        return items

    outcomes = await asyncio.gather(
        writer.submit(add_projects, "lost-a"),
        writer.submit(dangling, 1),
        writer.submit(add_projects, "lost-b"),
        return_exceptions=True,
    )
    for outcome in outcomes:
        assert isinstance(outcome, sa.exc.IntegrityError)
        assert not outcome.connection_invalidated
        assert isinstance(outcome.orig, psycopg.errors.ForeignKeyViolation)
    assert await names(db) == []
    await writer.submit(add_projects, "after")
    assert await names(db) == ["after"]


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)
async def test_postgresql_transaction_control_goes_straight_to_libpq(
    db: Database, writer: BatchWriter
) -> None:
    """BEGIN, the savepoints and COMMIT bypass psycopg's cursors and its commit(): a
    transaction whose jobs run no statement of their own opens no cursor; a savepoint
    rolled back on libpq leaves the other jobs' rows to commit."""
    calls: list[str] = []

    def spy(conn: Connection, items: list[int]) -> list[int]:
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        if not calls:
            cursor, commit = dbapi_conn.cursor, dbapi_conn.commit
            dbapi_conn.cursor = lambda *a, **k: calls.append("cursor") or cursor(*a, **k)
            dbapi_conn.commit = lambda: calls.append("commit") or commit()
        calls.append("job")
        return items

    def refused(conn: Connection, items: list[str]) -> list[int]:
        add_projects(conn, ["!never-seen" if i == "bad" else i for i in items])
        return [0] * len(items)

    await writer.submit(spy, 0)
    assert calls == ["job"]
    outcomes = await asyncio.gather(
        writer.submit(spy, 1),
        writer.submit(add_projects, "kept"),
        writer.submit(refused, "bad"),
        writer.submit(add_projects, "also-kept"),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and isinstance(outcomes[2], ValueError)
    assert await names(db) == ["also-kept", "kept"]
    # one cursor per INSERT, none for BEGIN, SAVEPOINT, ROLLBACK TO, RELEASE or COMMIT
    assert calls[:2] == ["job", "job"] and calls[2:].count("cursor") == 2


async def test_a_lost_connection_fails_the_whole_batch_not_one_caller(
    db: Database, writer: BatchWriter
) -> None:
    def connection_lost(conn: Connection, items: list[str]) -> list[int]:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionResetError("connection lost"))

    outcomes = await asyncio.gather(
        writer.submit(add_projects, "kept-back"),
        writer.submit(connection_lost, "x"),
        return_exceptions=True,
    )
    # no per-caller retry on a dead transaction: every caller gets the database error (503)
    assert all(isinstance(o, sa.exc.OperationalError) for o in outcomes)
    assert await names(db) == []


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)  # a server-side kill
async def test_a_connection_killed_while_idle_is_replaced_without_failing_a_batch(
    db: Database, writer: BatchWriter
) -> None:
    """PostgreSQL, for real: the server terminates the writer's kept connection between two
    transactions. The next batch, which committed nothing on it, runs again on a fresh
    connection (what a ping on checkout gave), so its callers do not see the loss."""

    def backend_pid(conn: Connection, items: list[int]) -> list[int]:
        return [int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())] * len(items)

    pid = await writer.submit(backend_pid, 0)
    async with db.write() as conn:
        await conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    ids = await asyncio.gather(writer.submit(add_projects, "a"), writer.submit(add_projects, "b"))
    assert len(set(ids)) == 2
    assert await names(db) == ["a", "b"]
    assert await writer.submit(backend_pid, 0) != pid


@pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True)  # a server-side kill
async def test_a_connection_lost_during_a_transaction_fails_its_batch(
    db: Database, writer: BatchWriter
) -> None:
    """PostgreSQL, for real: the writer's connection is terminated while its transaction
    runs (a job waits for the kill). The batch fails as a whole with SQLAlchemy's error
    for a lost connection (what the routes answer 503 for), it is not run again, and the
    next batch runs on a fresh connection."""
    pids: list[int] = []

    def killed_meanwhile(conn: Connection, items: list[str]) -> list[int]:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        pids.append(pid)
        if len(pids) == 1:
            url = db.batch_engine().url.set(drivername="postgresql")
            with psycopg.connect(url.render_as_string(hide_password=False)) as killer:
                killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits
        return add_projects(conn, items)

    outcomes = await asyncio.gather(
        writer.submit(add_projects, "lost-a"),
        writer.submit(killed_meanwhile, "lost-b"),
        return_exceptions=True,
    )
    for outcome in outcomes:
        assert isinstance(outcome, sa.exc.DBAPIError)
        assert outcome.connection_invalidated
    assert await names(db) == []
    await writer.submit(killed_meanwhile, "after")
    assert await names(db) == ["after"]
    assert len(pids) == 2 and pids[0] != pids[1]  # not retried; then a fresh connection


async def test_a_cancelled_caller_still_commits(db: Database, writer: BatchWriter) -> None:
    task = asyncio.create_task(writer.submit(add_projects, "gone"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.submit(add_projects, "next")  # queued behind it
    assert await names(db) == ["gone", "next"]


async def test_submit_many_returns_the_future_to_await(db: Database, writer: BatchWriter) -> None:
    """submit_many queues the rows at once and hands back the writer's future (no coroutine
    in between): awaiting it gives the results; cancelling it leaves the rows queued."""
    future = writer.submit_many(add_projects, ["f1", "f2"])
    assert isinstance(future, asyncio.Future)
    gone = writer.submit_many(add_projects, ["f3"])
    gone.cancel()
    first, second = await future
    assert second == first + 1
    await writer.submit(add_projects, "next")  # queued behind them
    assert await names(db) == ["f1", "f2", "f3", "next"]


def test_usable_from_successive_event_loops(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'loops.db'}")
    writer = BatchWriter(database)

    async def step(name: str) -> None:
        if name == "a":
            await upgrade(database)
        await writer.submit(add_projects, name)

    asyncio.run(step("a"))
    asyncio.run(step("b"))

    async def finish() -> list[str]:
        found = await names(database)
        await writer.close()
        await database.dispose()
        return found

    assert asyncio.run(finish()) == ["a", "b"]


async def test_gated_rows_are_queued_when_the_gate_opens_from_its_own_thread(
    db: Database, writer: BatchWriter
) -> None:
    """``after``: the rows wait for the gate (a blob flush) and are queued by the thread that
    opens it, with no trip through the event loop; a gate's error fails only its caller,
    which writes nothing."""
    opened: list[str] = []

    def gate_on_thread(error: Exception | None, delay: float) -> Gate:
        def gate(done: Callable[[Exception | None], None]) -> None:
            def open_later() -> None:
                opened.append(threading.current_thread().name)
                done(error)

            threading.Timer(delay, open_later).start()

        return gate

    ok = asyncio.create_task(writer.submit(add_projects, "gated", after=gate_on_thread(None, 0.3)))
    with pytest.raises(OSError, match="flush failed"):
        await writer.submit(add_projects, "never", after=gate_on_thread(OSError("flush failed"), 0))
    assert not ok.done()  # its gate has not opened yet
    assert await names(db) == []
    await ok
    assert await names(db) == ["gated"]
    assert len(opened) == 2 and all(n.startswith("Thread") for n in opened)


async def test_a_gate_that_opens_at_once_writes_like_an_ungated_submit(
    db: Database, writer: BatchWriter
) -> None:
    def open_gate(done: Callable[[Exception | None], None]) -> None:
        done(None)

    ids = await asyncio.gather(
        *(writer.submit(add_projects, f"g{i}", after=open_gate) for i in range(5))
    )
    assert len(set(ids)) == 5
    assert await names(db) == [f"g{i}" for i in range(5)]
