"""Plain SQL on the driver's own cursor, inside a SQLAlchemy connection's transaction.

The batch writer's jobs run a handful of prebuilt statements per transaction (a savepoint,
a key check, the highest id, a multi-row insert). Through ``Connection.exec_driver_sql``
each one pays for SQLAlchemy's execution context, result object and event dispatch:
measured on SQLite, 30-55 µs a statement against 3-5 µs for the same statement on the
sqlite3 cursor (an events transaction ran six of them, ~200 µs of its ~1.1 ms). :func:`execute`
runs the statement on the DBAPI cursor directly and keeps what callers rely on from
``exec_driver_sql``:

* errors are SQLAlchemy's, built the way it builds them (``IntegrityError``,
  ``OperationalError``... wrapping the driver's exception), so the batch writer still tells
  a request's bad rows from a lost database, and the routes still answer 503 for the latter;
* a driver error that means the connection is gone invalidates the SQLAlchemy connection,
  as ``exec_driver_sql`` would.

:func:`execute` runs the statement in whatever transaction the connection has open; it never
begins, commits or rolls back one. :func:`pg_command` is for the PostgreSQL batch writer's own
transaction control (``BEGIN``, savepoints, ``COMMIT``): a statement with no parameters and no
rows, sent straight through libpq (psycopg's ``pgconn.exec_``, which releases the GIL while it
waits). psycopg's cursor layer (a cursor, its query and result objects, a generator driving
non-blocking I/O with a poll per round trip) costs more than the round trip itself: in the
writer thread ~50 -> ~15 µs of CPU for the transaction's ``BEGIN; SAVEPOINT``, ~30 -> ~15 µs
for its ``COMMIT``. psycopg reads the transaction state from libpq, so it stays in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import OperationalError as PsycopgOperationalError
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, StatementError

_COMMAND_OK = ExecStatus.COMMAND_OK


def execute(conn: Connection, sql: str, params: Any = ()) -> Any:
    """Run ``sql`` (the dialect's paramstyle, as ``exec_driver_sql`` takes it) with
    ``params`` on a new DBAPI cursor of ``conn``; the cursor, to fetch from. With ``params``
    None, psycopg sends ``sql`` as a simple query, which may hold several statements."""
    return _run(conn, sql, params, many=False)


def execute_many(conn: Connection, sql: str, rows: Sequence[Any]) -> Any:
    """Run ``sql`` once per parameter tuple in ``rows`` (the driver's ``executemany``)."""
    return _run(conn, sql, rows, many=True)


def _run(conn: Connection, sql: str, params: Any, *, many: bool) -> Any:
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        elif params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
    except Exception as exc:
        if not isinstance(exc, conn.dialect.loaded_dbapi.Error):
            raise
        raise _sqlalchemy_error(conn, dbapi_conn, cursor, sql, params, exc) from exc
    return cursor


def pg_command(conn: Connection, sql: bytes) -> None:
    """PostgreSQL (psycopg): run ``sql``, one or more statements that take no parameters and
    return no rows, as one simple query on libpq. Raises what :func:`execute` raises: the
    SQLAlchemy error for the server's error (``IntegrityError`` for a deferred constraint
    failing at ``COMMIT``...), and for a lost connection an ``OperationalError`` with
    ``connection_invalidated`` set, the SQLAlchemy connection invalidated."""
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    pgconn = dbapi_conn.pgconn
    try:
        result = pgconn.exec_(sql)  # no result at all: raises psycopg's OperationalError
        if result.status == _COMMAND_OK:
            return
        if dbapi_conn.broken:  # what psycopg's own execution raises for a lost connection
            message = result.get_error_message() or "the connection was lost"
            raise PsycopgOperationalError(message.strip())
        raise error_from_result(result, encoding=dbapi_conn.info.encoding)
    except Exception as exc:
        if not isinstance(exc, conn.dialect.loaded_dbapi.Error):
            raise
        raise _sqlalchemy_error(conn, dbapi_conn, None, sql.decode(), None, exc) from exc


def _sqlalchemy_error(
    conn: Connection, dbapi_conn: Any, cursor: Any, sql: str, params: Any, exc: Any
) -> StatementError:
    """The SQLAlchemy error for the driver's ``exc``, built as SQLAlchemy builds it; a
    connection found gone invalidates ``conn``."""
    dialect = conn.dialect
    gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
    if gone:
        conn.invalidate(exc)
    error: StatementError = DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
    )
    return error
