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

import weakref
from collections.abc import Sequence
from typing import Any

from psycopg import OperationalError as PsycopgOperationalError
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, StatementError


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
    _pg_run(conn, sql, None, None, None)


def pg_exec_params(
    conn: Connection,
    sql: bytes,
    params: Sequence[bytes | None],
    types: Sequence[int],
    formats: Sequence[int],
) -> PGresult:
    """PostgreSQL (psycopg): run one statement with ``$1, $2, ...`` parameters straight on
    libpq (``PQexecParams``, the GIL released while it waits); its result (rows, when it
    has any, as libpq's text). ``params`` are what libpq sends: the value's text (or its
    binary form where ``formats`` says 1), None for NULL; ``types`` their type OIDs (0: the
    server infers it from where the parameter stands). For the batch writer's hot
    statements, where psycopg's cursor (query conversion, a dumper per value, result
    objects) costs more than the round trip: an ``executemany`` of 16 session batch rows
    ~67k instructions a row. Each distinct ``sql`` is prepared on the connection at its
    first run (as psycopg's cursor prepares a statement run often), so the server does not
    parse and plan it again. Raises what :func:`pg_command` raises."""
    return _pg_run(conn, sql, params, types, formats)


#: Statements prepared on each libpq connection: sql -> name. psycopg's cursor prepares a
#: statement it has run 5 times; unprepared, the server parses and plans it at every run
#: (PostgreSQL's CPU per backend event ~+20%, bench.cpu_cost --pg-data).
_prepared: weakref.WeakKeyDictionary[Any, dict[bytes, bytes]] = weakref.WeakKeyDictionary()
#: Past this many on one connection, further statements run unprepared.
_MAX_PREPARED = 128


_PG_OK = (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)


def pg_text_rows(result: PGresult, encoding: str = "utf-8") -> list[tuple[str | None, ...]]:
    """The rows of a :func:`pg_exec_params` result (text format) as tuples of strings (None
    for NULL): the caller converts numbers, as it would a psycopg row's."""
    get = result.get_value
    width = result.nfields
    rows = []
    for i in range(result.ntuples):
        row = []
        for j in range(width):
            value = get(i, j)
            row.append(None if value is None else bytes(value).decode(encoding))
        rows.append(tuple(row))
    return rows


def pg_text_array(values: Sequence[str]) -> bytes:
    """A PostgreSQL array literal of ``values`` as text (``{"a","b"}``), for one parameter
    such as ``= ANY($1::varchar[])``: every element quoted, its quotes and backslashes
    escaped."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return ("{" + ",".join(f'"{v}"' for v in quoted) + "}").encode()


def _pg_run(
    conn: Connection,
    sql: bytes,
    params: Sequence[bytes | None] | None,
    types: Sequence[int] | None,
    formats: Sequence[int] | None,
) -> PGresult:
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    pgconn = dbapi_conn.pgconn
    result: PGresult
    try:
        # no result at all: raises psycopg's OperationalError
        if params is None:
            result = pgconn.exec_(sql)
        else:
            result = _pg_exec_prepared(pgconn, sql, params, types, formats)
        if result.status in _PG_OK:
            return result
        if dbapi_conn.broken:  # what psycopg's own execution raises for a lost connection
            message = result.get_error_message() or "the connection was lost"
            raise PsycopgOperationalError(message.strip())
        raise error_from_result(result, encoding=dbapi_conn.info.encoding)
    except Exception as exc:
        if not isinstance(exc, conn.dialect.loaded_dbapi.Error):
            raise
        raise _sqlalchemy_error(conn, dbapi_conn, None, sql.decode(), params, exc) from exc


def _pg_exec_prepared(
    pgconn: Any,
    sql: bytes,
    params: Sequence[bytes | None],
    types: Sequence[int] | None,
    formats: Sequence[int] | None,
) -> PGresult:
    """``sql`` run as a statement prepared on ``pgconn`` (prepared at its first run)."""
    names = _prepared.get(pgconn)
    if names is None:
        names = _prepared[pgconn] = {}
    name = names.get(sql)
    if name is None:
        if len(names) >= _MAX_PREPARED:
            result: PGresult = pgconn.exec_params(sql, params, types, formats)
            return result
        name = b"fr_plain_%d" % len(names)
        prepared: PGresult = pgconn.prepare(name, sql, types)
        if prepared.status != ExecStatus.COMMAND_OK:
            return prepared  # the caller raises its error
        names[sql] = name
    result = pgconn.exec_prepared(name, params, formats)
    return result


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
