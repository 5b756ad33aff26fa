"""The database handle: async engines for SQLite (WAL) and PostgreSQL behind one interface.

``write()`` opens a write transaction and ``read()`` a read-only connection. On SQLite the
writer is a single connection that starts transactions with ``BEGIN IMMEDIATE`` (one writer,
no lock upgrades, no ``database is locked`` surprises) while readers run concurrently
through WAL; on PostgreSQL both share one pool (asyncpg).

The batch writer (:mod:`fieldreport.storage.writer`) has a synchronous engine of its own,
used from its own thread: pysqlite on SQLite, psycopg on PostgreSQL (:meth:`batch_engine`).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from fieldreport.storage import driver

P = ParamSpec("P")
T = TypeVar("T")


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


#: asyncpg's names for connection options that libpq (psycopg) spells otherwise, and the
#: ones only asyncpg (or SQLAlchemy's asyncpg dialect) knows.
_LIBPQ_NAMES = {"ssl": "sslmode"}
_ASYNCPG_ONLY = {"prepared_statement_cache_size", "prepared_statement_name_func"}


def psycopg_url(url: str) -> URL:
    """The same PostgreSQL database for psycopg: the URL's options in libpq's names
    (``ssl=require`` -> ``sslmode=require``), asyncpg-only options left out."""
    parsed = make_url(url)
    query = {
        _LIBPQ_NAMES.get(name, name): value
        for name, value in parsed.query.items()
        if name not in _ASYNCPG_ONLY
    }
    return parsed.set(drivername="postgresql+psycopg", query=query)


def _with_sqlite_pragmas(engine: Engine, *, writer: bool) -> Engine:
    """WAL, ``synchronous=FULL`` (a commit is on disk when it returns), foreign keys, and
    ``BEGIN IMMEDIATE`` for writers (no lock upgrades, no ``database is locked`` surprises)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # on the driver's cursor: exec_driver_sql's execution costs 30-55 µs (storage/driver.py)
        driver.execute(conn, "BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _sqlite_engine(url: str, *, writer: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1 if writer else pool_size,
        max_overflow=0,
        pool_timeout=60,
    )
    _with_sqlite_pragmas(engine.sync_engine, writer=writer)
    return engine


class Database:
    """Owns the engines; use :meth:`write` and :meth:`read` as async context managers."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self._async_url = async_url(url)
        parsed = make_url(self._async_url)
        self.dialect = parsed.get_backend_name()
        #: The SQLite database's file (None: PostgreSQL, in memory, or a ``file:`` URI).
        self.sqlite_file: str | None = None
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                if not parsed.database.startswith("file:"):
                    self.sqlite_file = parsed.database
            self._writer = _sqlite_engine(self._async_url, writer=True, pool_size=1)
            self._reader = _sqlite_engine(self._async_url, writer=False, pool_size=pool_size)
        else:
            self._writer = create_async_engine(
                self._async_url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=30,
            )
            self._reader = self._writer
        self._batch_engine: Engine | None = None
        self._pool_size = pool_size
        self._read_engine: Engine | None = None  # SQLite: run_read's synchronous readers
        self._read_threads: ThreadPoolExecutor | None = None
        self._engine_lock = threading.Lock()
        self._reader_local = threading.local()
        self._reader_conns: list[Connection] = []  # to close them on dispose

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def engine(self) -> AsyncEngine:
        """The writer engine (migrations, maintenance)."""
        return self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on error."""
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    async def run_read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a synchronous read ``fn(conn, ...)`` in one read transaction: on SQLite in a
        reader thread, start to end (one thread hop, where an async read costs one per
        statement and one to begin and end); on PostgreSQL through ``run_sync``. For the
        lookups on the ingest hot path (keys)."""
        if not self.is_sqlite:
            async with self.read() as conn:
                return await conn.run_sync(fn, *args, **kwargs)
        if self._read_threads is None:
            self._read_threads = ThreadPoolExecutor(
                self._pool_size, thread_name_prefix="fieldreport-reader"
            )
        call = functools.partial(self._sync_read, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, call)

    def _sync_read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._read_engine is None:
            with self._engine_lock:
                if self._read_engine is None:
                    self._read_engine = self._sqlite_sync_engine(self._pool_size, writer=False)
        # Each reader thread keeps its connection (no pool checkout and reset per read).
        conn: Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = self._read_engine.connect()
            self._reader_local.conn = conn
            with self._engine_lock:
                self._reader_conns.append(conn)
        try:
            with conn.begin():
                return fn(conn, *args, **kwargs)
        except BaseException:
            # After any error the next read starts on a fresh connection.
            self._reader_local.conn = None
            with self._engine_lock:
                self._reader_conns.remove(conn)
            conn.close()
            raise

    def _sqlite_sync_engine(self, pool_size: int, *, writer: bool) -> Engine:
        """A synchronous pysqlite engine on the same file, with the same pragmas."""
        return _with_sqlite_pragmas(
            create_engine(
                make_url(self._async_url).set(drivername="sqlite+pysqlite"),
                poolclass=QueuePool,
                pool_size=pool_size,
                max_overflow=0,
                connect_args={"check_same_thread": False},  # closed from another thread
            ),
            writer=writer,
        )

    def batch_engine(self) -> Engine:
        """A synchronous engine for the batch writer's own thread
        (:mod:`fieldreport.storage.writer`), which runs each transaction there start to
        end, one thread hop per transaction: pysqlite on SQLite (same file and pragmas),
        psycopg on PostgreSQL (same server and database as the asyncpg pool; the
        connection is checked with a ping when it is taken from its one-slot pool, which
        the writer does once per connection, not per transaction)."""
        if self._batch_engine is None:
            if self.is_sqlite:
                self._batch_engine = self._sqlite_sync_engine(1, writer=True)
            else:
                url = psycopg_url(self._async_url)
                self._batch_engine = create_engine(
                    url,
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=0,
                    pool_pre_ping=True,
                    pool_timeout=30,
                    # The writer sends BEGIN itself, with its first SAVEPOINT (one round
                    # trip: storage/writer.py); psycopg's COMMIT and ROLLBACK still follow
                    # the transaction it finds open.
                    isolation_level="AUTOCOMMIT",
                    # asyncpg's default connect timeout, where libpq would wait forever
                    connect_args={} if "connect_timeout" in url.query else {"connect_timeout": 60},
                )
        return self._batch_engine

    async def dispose(self) -> None:
        if self._read_threads is not None:
            threads, self._read_threads = self._read_threads, None
            await asyncio.get_running_loop().run_in_executor(None, threads.shutdown)
            self._reader_local = threading.local()
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._read_engine is not None:
            self._read_engine.dispose()
            self._read_engine = None
        if self._batch_engine is not None:
            self._batch_engine.dispose()
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
