"""Plain SQL for hot paths: statements written once per dialect, run on the driver's cursor
(:mod:`fieldreport.storage.driver`), with the columns' own SQLAlchemy type processing applied
to values and rows.

A Core execution costs, per statement, a compile-cache lookup, a parameter dict and an
execution context (~50-100 µs), and per row a dict of bound values and a ``Row`` (~10 µs);
the delivery worker's claim and record paths ran ~10 Core statements per transaction and paid
that for every delivery. Here a statement is a string and a row a tuple, while values still
go through the column types (a timestamp as SQLite's text, JSON decoded, booleans as the
driver gives them), so what is stored and read is what Core stores and reads.

Statements are written with ``?`` placeholders (SQLite's paramstyle); :func:`dialect_sql`
numbers them ``$1, $2, ...`` for asyncpg. Lists go in as ``IN (?, ?, ...)`` on SQLite and as
one array parameter (``= ANY(?::integer[])``) on PostgreSQL, where one prepared statement
then serves every length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

from fieldreport.storage import driver
from fieldreport.storage.schema.base import UTCDateTime

Processor = Callable[[Any], Any] | None

_numbered: dict[tuple[str, str], str] = {}
_binds: dict[tuple[str, str, sa.Column[Any]], Processor] = {}
_results: dict[
    tuple[str, str, tuple[sa.Column[Any], ...], tuple[Any, ...]], tuple[Processor, ...]
] = {}


def dialect_sql(dialect: Dialect, sql: str) -> str:
    """``sql`` (``?`` placeholders) in the dialect's paramstyle."""
    if dialect.paramstyle == "qmark":
        return sql
    found = _numbered.get((dialect.paramstyle, sql))
    if found is None:
        if dialect.paramstyle in ("format", "pyformat"):
            found = sql.replace("%", "%%").replace("?", "%s")
        elif dialect.paramstyle == "numeric_dollar":
            head, *rest = sql.split("?")
            found = head + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))
        else:
            raise NotImplementedError(f"plain SQL does not know paramstyle {dialect.paramstyle}")
        _numbered[(dialect.paramstyle, sql)] = found
    return found


def in_list(dialect: Dialect, values: Sequence[Any], sql_type: str = "integer") -> tuple[str, Any]:
    """``(fragment, parameters)`` for ``column <fragment>``: ``IN (?, ...)`` and the values on
    SQLite, ``= ANY(?::type[])`` and one list on PostgreSQL. ``values`` must not be empty."""
    if dialect.name == "postgresql":
        return f"= ANY(?::{sql_type}[])", (list(values),)
    values = padded(values)
    return f"IN ({_marks(len(values))})", values


def not_in_list(
    dialect: Dialect, values: Sequence[Any], sql_type: str = "integer"
) -> tuple[str, Any]:
    """Like :func:`in_list`, negated: ``NOT IN (?, ...)`` / ``<> ALL(?::type[])``."""
    if dialect.name == "postgresql":
        return f"<> ALL(?::{sql_type}[])", (list(values),)
    values = padded(values)
    return f"NOT IN ({_marks(len(values))})", values


def padded(values: Sequence[Any]) -> tuple[Any, ...]:
    """``values`` with its last one repeated up to the next power of two (at least one
    value): an ``IN`` list, or a ``VALUES`` list whose repeated last row changes nothing
    (an ``UPDATE ... FROM`` updates a row once), of one of a few lengths. SQLite prepares a
    statement per distinct text (pysqlite caches 128 per connection); a list of a batch's
    length made a new text for most batches, and preparing one of 64 rows costs ~700k
    instructions, ~3% of the delivery worker's (on the delivery benchmark)."""
    n = len(values)
    size = 1 << (n - 1).bit_length()
    return (*values, *([values[-1]] * (size - n))) if size > n else tuple(values)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


#: Bound parameters per SQLite statement: 32766 since SQLite 3.32, 999 before.
SQLITE_MAX_VARIABLES = 999


def sqlite_values(rows: Sequence[Any], width: int) -> Iterator[tuple[int, Sequence[Any], str]]:
    """``rows`` (of ``width`` parameters each) in slices that one SQLite statement can bind:
    ``(offset of the slice, the slice, its VALUES list "(?, ...), (?, ...)")``."""
    one_row = f"({', '.join('?' * width)})"
    per_statement = SQLITE_MAX_VARIABLES // width
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        yield start, chunk, ", ".join([one_row] * len(chunk))


_values_lists: dict[tuple[int, int], str] = {}


def power_of_two_slices(count: int, most: int) -> Iterator[tuple[int, int]]:
    """(start, size) of slices covering ``count`` rows, each a power of two of at most
    ``most`` rows, largest first (37 rows: 32, 4, 1): a multi-row statement per slice then
    has one of a few texts whatever the row count, so a driver's or server's cache of
    prepared statements finds it prepared."""
    cap = 1 << (most.bit_length() - 1)
    start = 0
    while count:
        size = min(cap, 1 << (count.bit_length() - 1))
        yield start, size
        start += size
        count -= size


def sqlite_slices(rows: Sequence[Any], width: int) -> Iterator[tuple[int, Sequence[Any], str]]:
    """Like :func:`sqlite_values`, for rows that cannot be padded (an INSERT's): slices of
    power-of-two sizes (:func:`power_of_two_slices`), so that pysqlite's statement cache
    finds each statement prepared (a new text per batch length cost a prepare of ~10k
    instructions a row)."""
    for start, size in power_of_two_slices(len(rows), SQLITE_MAX_VARIABLES // width):
        values = _values_lists.get((width, size))
        if values is None:
            values = _values_lists[(width, size)] = ", ".join(
                [f"({', '.join('?' * width)})"] * size
            )
        yield start, rows[start : start + size], values


def binder(dialect: Dialect, column: sa.Column[Any]) -> Callable[[Any], Any]:
    """The column type's bind processing (what Core applies to a value of that column)."""
    key = (dialect.name, dialect.driver, column)
    if key not in _binds:
        fast = _sqlite_utc_bind if _sqlite_utc(dialect, column) else None
        _binds[key] = fast or column.type.dialect_impl(dialect).bind_processor(dialect)
    process = _binds[key]
    return _identity if process is None else process


def rows(
    dialect: Dialect, cursor: Any, columns: tuple[sa.Column[Any], ...]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``cursor`` (a plain SELECT of ``columns``, in that order) as tuples of
    values as Core would return them (the columns' result processing, chosen once per
    dialect and statement shape from the driver's type codes, as Core chooses them)."""
    description = cursor.description
    codes = tuple(d[1] for d in description) if description else (None,) * len(columns)
    key = (dialect.name, dialect.driver, columns, codes)
    processors = _results.get(key)
    if processors is None:
        processors = tuple(
            _sqlite_utc_result(c.type.dialect_impl(dialect).result_processor(dialect, code))
            if _sqlite_utc(dialect, c)
            else _sqlite_json_result(c.type.dialect_impl(dialect).result_processor(dialect, code))
            if _sqlite_json(dialect, c)
            else c.type.dialect_impl(dialect).result_processor(dialect, code)
            for c, code in zip(columns, codes, strict=True)
        )
        _results[key] = processors
    fetched = cursor.fetchall()
    work = [(i, p) for i, p in enumerate(processors) if p is not None]
    if not work:
        yield from (tuple(row) for row in fetched)
        return
    for row in fetched:
        values = list(row)
        for i, process in work:
            values[i] = process(values[i])
        yield tuple(values)


def select_list(columns: tuple[sa.Column[Any], ...], alias: str = "") -> str:
    """``a, b, c`` (optionally ``alias.a, ...``) for a SELECT of ``columns``."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c.name}" for c in columns)


def execute(conn: Connection, sql: str, params: Any = ()) -> Any:
    """Run ``sql`` (``?`` placeholders) on ``conn``'s driver; the DBAPI cursor, to fetch
    from (``exec_driver_sql`` would cost 30-55 µs more a statement: storage/driver.py)."""
    return driver.execute(conn, dialect_sql(conn.dialect, sql), params)


def execute_many(conn: Connection, sql: str, rows: Sequence[Any]) -> Any:
    """Run ``sql`` (``?`` placeholders) once per parameter tuple of ``rows``."""
    return driver.execute_many(conn, dialect_sql(conn.dialect, sql), rows)


def _identity(value: Any) -> Any:
    return value


# A UTC timestamp on SQLite, as Core's processing writes and reads it (UTCDateTime on top of
# SQLite's DATETIME: naive text "YYYY-MM-DD HH:MM:SS.ffffff"), by the datetime type's C
# methods. Core formats the text with a %-mapping and parses it with a regular expression,
# then UTCDateTime converts the zone with keyword calls: ~25k instructions a value, ~2.5% of
# the delivery worker's instructions (a claimed report's timestamp, each attempt's start).


def _sqlite_utc(dialect: Dialect, column: sa.Column[Any]) -> bool:
    return dialect.name == "sqlite" and isinstance(column.type, UTCDateTime)


def refuse_naive(value: datetime) -> None:
    """Refuse a naive time for a UTC column, as ``UTCDateTime`` does (a naive time would be
    read in some other zone: the server's session's, or none)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")


def _sqlite_utc_bind(value: datetime | None) -> str | None:
    if value is None:
        return None
    refuse_naive(value)
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return sqlite_utc_text(value)


_SQLITE_UTC_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def sqlite_utc_text(value: datetime) -> str:
    """A UTC datetime's text on SQLite: its ISO form without the offset,
    ``value.isoformat(" ", "microseconds")[:26]``, by one fixed %-format (~1/3 cheaper:
    no argument parsing, no offset made and cut off again)."""
    return _SQLITE_UTC_TEXT % (
        value.year, value.month, value.day,
        value.hour, value.minute, value.second, value.microsecond,
    )  # fmt: skip


def _sqlite_utc_result(core: Processor) -> Callable[[Any], datetime | None]:
    """Parse what Core wrote (:func:`_sqlite_utc_bind`) directly; any other text (written by
    hand, say) goes through Core's processing."""

    def process(value: Any) -> datetime | None:
        if value is None:
            return None
        if type(value) is str and len(value) == 26:
            try:
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass
        result: datetime | None = core(value) if core is not None else value
        return result

    return process


# A JSON column on SQLite, read as Core reads it (``json.loads`` of the stored text, through
# two wrappers of SQLAlchemy's): ~4.3 µs for a report's two-note list, ~0.2 µs by msgspec,
# which the delivery worker's writer thread paid for every claimed report. msgspec is
# stricter than ``json.loads`` (no NaN or Infinity, no lone surrogate escapes, no number
# beyond a float's range) and gives the same values for all it accepts; anything it refuses
# (or a value that is not text) goes through Core's processing, with Core's answer or error.
_json_decode = msgspec.json.decode


def _sqlite_json(dialect: Dialect, column: sa.Column[Any]) -> bool:
    return (
        dialect.name == "sqlite"
        and isinstance(column.type, sa.JSON)
        and getattr(dialect, "_json_deserializer", None) is None
    )


def _sqlite_json_result(core: Processor) -> Processor:
    if core is None:
        return None

    def process(value: Any) -> Any:
        if type(value) is str:
            try:
                return _json_decode(value)
            except msgspec.DecodeError:
                pass
        return core(value)

    return process
