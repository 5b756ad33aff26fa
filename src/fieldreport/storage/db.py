"""The database handle: async engines for SQLite (WAL) and PostgreSQL behind one interface.

``write()`` opens a write transaction and ``read()`` a read-only connection. On SQLite the
writer is a single connection that starts transactions with ``BEGIN IMMEDIATE`` (one writer,
no lock upgrades, no ``database is locked`` surprises) while readers run concurrently
through WAL; on PostgreSQL both share one pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now (ingest answers 503 with Retry-After)."""


def async_url(url: str) -> str:
    """Map user-facing URLs to async drivers: sqlite -> aiosqlite, postgresql -> asyncpg."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1 if writer else pool_size,
        max_overflow=0,
        pool_timeout=60,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class _GroupCommit:
    """Group commit for the single SQLite writer.

    Concurrent ``write()`` blocks run one after another, each inside a SAVEPOINT of one shared
    transaction; a flusher task queued behind them commits once for all (one WAL fsync) and
    only then do their ``write()`` blocks return. A block that raises is rolled back to its
    savepoint alone; if the COMMIT fails, every block of that batch raises.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = asyncio.Lock()
        self.conn: AsyncConnection | None = None
        self.done: asyncio.Future[None] | None = None
        self.flusher: asyncio.Task[None] | None = None

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a Database may be used from several asyncio.run() calls
            self.loop, self.lock, self.conn, self.done, self.flusher = (
                loop,
                asyncio.Lock(),
                None,
                None,
                None,
            )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        self._bind()
        async with self.lock:
            if self.conn is None:
                self.conn = await self.engine.connect()
                try:
                    await self.conn.begin()  # BEGIN IMMEDIATE (see _sqlite_engine)
                except BaseException:
                    conn, self.conn = self.conn, None
                    await asyncio.shield(conn.close())
                    raise
                self.done = asyncio.get_running_loop().create_future()
            conn, done = self.conn, self.done
            assert done is not None
            try:
                savepoint = await conn.begin_nested()
                try:
                    yield conn
                except BaseException:
                    await asyncio.shield(savepoint.rollback())
                    raise
                await savepoint.commit()
            finally:
                if self.flusher is None:
                    self.flusher = asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        async with self.lock:  # FIFO: the blocks queued before this task are in the batch
            conn, done, self.conn, self.done, self.flusher = self.conn, self.done, None, None, None
            if conn is None or done is None:
                return
            try:
                await conn.commit()
            except BaseException as exc:
                done.set_exception(exc)
                done.exception()  # retrieved here; each waiting block re-raises it
                await conn.rollback()
            else:
                done.set_result(None)
            finally:
                await conn.close()

    async def close(self) -> None:
        if self.flusher is not None and self.loop is asyncio.get_running_loop():
            await self.flusher


class Database:
    """Owns the engines; use :meth:`write` and :meth:`read` as async context managers."""

    def __init__(self, url: str, *, pool_size: int = 10, group_commit: bool = False) -> None:
        self.url = url
        self._async_url = async_url(url)
        parsed = make_url(self._async_url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self._writer = _sqlite_engine(self._async_url, writer=True, pool_size=1)
            self._reader = _sqlite_engine(self._async_url, writer=False, pool_size=pool_size)
            self._group = _GroupCommit(self._writer) if group_commit else None
        else:
            self._writer = create_async_engine(
                self._async_url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=30,
            )
            self._reader = self._writer
            self._group = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        """The writer engine (migrations, maintenance)."""
        return self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on error. With group commit
        (SQLite), the block is a savepoint of a shared transaction that has committed by the
        time the block's ``async with`` returns."""
        if self._group is not None:
            async with self._group.write() as conn:
                yield conn
            return
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        if self._group is not None:
            await self._group.close()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
