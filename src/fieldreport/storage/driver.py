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

The statement runs in whatever transaction the connection has open (SQLAlchemy's, begun by
the writer); nothing here begins, commits or rolls back one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


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
        dialect = conn.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        if not isinstance(exc, dbapi_error):
            raise
        gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, dbapi_error, connection_invalidated=gone, dialect=dialect
        ) from exc
    return cursor
