"""Multi-row inserts that return the new rows' ids, in order, on SQLite and PostgreSQL.

:func:`insert_ids` takes SQLAlchemy Core rows (dicts, any columns). :class:`RowInsert` is for
the ingest hot paths: a statement for a fixed list of columns, written once per dialect and run
on the driver's cursor (:mod:`fieldreport.storage.driver`) with tuples that are already what
the driver takes (see :meth:`RowInsert.bind`). That skips what a Core execution costs per
statement and per row (compile-cache lookup, parameter dicts, type processing: ~10 µs a row,
~50 µs a statement), and even ``exec_driver_sql``'s execution context (30-55 µs a statement),
while errors still arrive as SQLAlchemy's exceptions and the connection's transaction is the
caller's, as with Core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

from fieldreport.storage import driver
from fieldreport.storage.plainsql import dialect_sql, sqlite_slices


def insert_ids(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` (integer primary key ``id``) in one statement and
    return their ids in the order of ``rows``."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        # SQLite has one writer at a time (BEGIN IMMEDIATE), so the next ids are known; and
        # executemany without RETURNING is one call, where RETURNING in a defined order
        # would cost one statement per row.
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
        first = int(top.scalar_one()) + 1
        ids = list(range(first, first + len(rows)))
        conn.execute(table.insert(), [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids
    result = conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)
    return [int(r[0]) for r in result]


# Column types whose values JSON carries exactly (with a cast from text on the way in).
_JSON_EXACT = {"INTEGER", "BIGINT", "SMALLINT", "BOOLEAN", "TIMESTAMP WITH TIME ZONE"}
_ROWS_JSON = msgspec.json.Encoder()


@dataclass(frozen=True)
class _Statements:
    insert: str  # PostgreSQL: the whole statement; SQLite: up to VALUES, rows follow
    top: str = ""  # SQLite: the highest id so far
    libpq: bytes = b""  # psycopg: the rows as one JSON text ($1), the statement run on libpq
    libpq_rows: bytes = b""  # the same without RETURNING (see RowInsert.pg_json_insert)


class RowInsert:
    """``INSERT INTO table (columns...)`` of many rows, returning their ids (the table's
    integer primary key ``id``) in the order of the rows.

    * SQLite: the writer holds the database (``BEGIN IMMEDIATE``), so the next ids are
      ``max(id) + 1...``, given explicitly. The rows go in as multi-row statements of
      power-of-two row counts (37 rows: 32, 4 and 1: few texts, found prepared; see
      :func:`~fieldreport.storage.plainsql.sqlite_slices`), not an ``executemany``: pysqlite
      runs each row of that as a step of its own and releases and takes back the GIL
      around each, which the writer thread pays for in waits while the event loop holds
      the GIL.
    * PostgreSQL: one statement whatever the row count, ``INSERT ... SELECT ... FROM
      unnest($1::type[], ...) WITH ORDINALITY ... ORDER BY ordinality RETURNING id``: the
      ids come from the sequence in that order, so sorted they match the rows (what
      SQLAlchemy's own ``sort_by_parameter_order`` relies on). One prepared statement
      serves every row count. On psycopg (the batch writer's driver) the rows go in as
      one JSON array of arrays instead, ``jsonb_array_elements(?::jsonb) WITH ORDINALITY``,
      when every column's type travels exactly as JSON text (see :meth:`_json_casts`), the
      statement run straight on libpq (:func:`driver.pg_exec_params`: psycopg's cursor,
      its query conversion and result objects, cost more than the round trip). A JSON
      column's value is then its JSON text (a ``str``), cast to ``json`` as it stands, so
      the stored text is the caller's (Core stores ``json.dumps`` of the value).
    """

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._sql: dict[str, _Statements] = {}
        self._binds: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}

    def bind(self, conn: Connection, column: str, value: Any) -> Any:
        """``value`` of ``column`` as the driver takes it (the column type's bind processing:
        a timestamp as SQLite's text, a boolean as SQLite's integer). For values shared by
        many rows, so that the per-row tuples need no processing."""
        key = (conn.dialect.name, conn.dialect.driver, column)
        if key not in self._binds:
            column_type = self.table.c[column].type.dialect_impl(conn.dialect)
            self._binds[key] = column_type.bind_processor(conn.dialect)
        process = self._binds[key]
        return value if process is None else process(value)

    def ids(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Insert ``rows`` (one value per column, in order, as :meth:`bind` gives them) in
        the caller's transaction; their new ids, in order."""
        if not rows:
            return []
        sql = self._sql.get(conn.dialect.driver) or self._build(conn.dialect)
        if conn.dialect.name == "sqlite":
            [(top,)] = driver.execute(conn, sql.top).fetchall()  # all: the statement is done
            first = int(top) + 1
            for start, chunk, values in sqlite_slices(rows, len(self.columns) + 1):
                params: list[Any] = []  # a loop of extends: 7x cheaper than a generator
                for i, row in enumerate(chunk, first + start):
                    params.append(i)
                    params.extend(row)
                driver.execute(conn, f"{sql.insert} {values}", params)
            return list(range(first, first + len(rows)))
        if sql.libpq:  # one JSON text of the rows (see _json_casts), straight on libpq
            result = driver.pg_exec_params(conn, sql.libpq, [_ROWS_JSON.encode(rows)], [0], [0])
            get = result.get_value
            ids = sorted(int(get(i, 0)) for i in range(result.ntuples))  # type: ignore[arg-type]
            if len(ids) != len(rows):
                raise RuntimeError(f"inserted {len(rows)} rows but got {len(ids)} ids")
            return ids
        arrays = tuple(list(column) for column in zip(*rows, strict=True))
        found = driver.execute(conn, sql.insert, arrays).fetchall()
        ids = sorted(int(new_id) for (new_id,) in found)
        if len(ids) != len(rows):
            raise RuntimeError(f"inserted {len(rows)} rows but got {len(ids)} ids")
        return ids

    def pg_json_insert(self, dialect: Dialect, param: int) -> str:
        """psycopg: the INSERT of :meth:`ids` without ``RETURNING`` (for a table whose new
        ids nobody needs, or that has none), the rows' JSON text as parameter ``$param``,
        for a statement that runs it with others as a data-modifying ``WITH`` query: one
        round trip for all. The rows are inserted in their order (a serial column numbers
        them so, as Core's multi-row insert does)."""
        sql = self._sql.get(dialect.driver) or self._build(dialect)
        if not sql.libpq_rows:
            raise NotImplementedError(f"{self.table.name}: no JSON insert on {dialect.driver}")
        return sql.libpq_rows.decode().replace("$1::jsonb", f"${param}::jsonb")

    @staticmethod
    def pg_json_rows(rows: Sequence[tuple[Any, ...]]) -> bytes:
        """The value of :meth:`pg_json_insert`'s parameter for ``rows``: the JSON text
        :meth:`ids` sends too."""
        return _ROWS_JSON.encode(rows)

    def _build(self, dialect: Dialect) -> _Statements:
        table = dialect.identifier_preparer.format_table(self.table)
        names = ", ".join(dialect.identifier_preparer.quote(c) for c in self.columns)
        if dialect.name == "sqlite":
            built = _Statements(
                insert=f"INSERT INTO {table} (id, {names}) VALUES",
                top=f"SELECT coalesce(max(id), 0) FROM {table}",
            )
        elif dialect.name == "postgresql" and (casts := self._json_casts(dialect)):
            values = ", ".join(f"(r->>{i})::{cast}" for i, cast in enumerate(casts))
            plain = (
                f"INSERT INTO {table} ({names}) SELECT {values} FROM jsonb_array_elements"
                "(?::jsonb) WITH ORDINALITY AS u(r, _position) ORDER BY _position"
            )
            insert = f"{plain} RETURNING id"
            built = _Statements(
                insert=dialect_sql(dialect, insert),
                libpq=insert.replace("?", "$1").encode(),
                libpq_rows=plain.replace("?", "$1").encode(),
            )
        elif dialect.name == "postgresql":
            arrays = ", ".join(
                f"?::{self.table.c[c].type.compile(dialect=dialect)}[]" for c in self.columns
            )
            built = _Statements(
                insert=dialect_sql(
                    dialect,
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) "
                    f"WITH ORDINALITY AS u({names}, _position) ORDER BY _position RETURNING id",
                )
            )
        else:
            raise NotImplementedError(f"RowInsert does not know {dialect.name}")
        self._sql[dialect.driver] = built
        return built

    def _json_casts(self, dialect: Dialect) -> tuple[str, ...]:
        """psycopg: each column's cast from JSON text, or nothing when a column's type is not
        one that text and JSON carry exactly (then ``unnest`` of arrays, as for asyncpg).

        psycopg adapts a Python list to an array in Python, value by value: for 16 events
        (11 columns) ~700 µs of the writer thread's CPU, holding the GIL, against ~130 µs
        for the same rows as one JSON text (msgspec) taken apart by the server. Strings are
        cast to ``text``, not to ``varchar(n)`` (an explicit cast would cut a long value
        where the column's assignment refuses it)."""
        if dialect.driver != "psycopg":
            return ()
        casts = []
        for column in self.columns:
            compiled = self.table.c[column].type.compile(dialect=dialect).upper()
            if compiled == "TEXT" or compiled.startswith("VARCHAR"):
                casts.append("text")
            elif compiled in _JSON_EXACT:
                casts.append(compiled.lower())
            elif compiled == "JSON":  # the value is its JSON text (see the class)
                casts.append("json")
            else:
                return ()
        return tuple(casts)
