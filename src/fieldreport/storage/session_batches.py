"""Session batches: their rows and their bytes, stored inline or in the blob store.

A batch is kept exactly as sent. Batches of at most :data:`INLINE_BATCH_BYTES` are kept in
their row (``session_batches.data``), committed with it in the batch writer's transaction:
no blob file, no separate flush. Larger ones are streamed to the blob store first and the
row names them (``blob_key``). Exactly one of the two is set (a CHECK constraint says so).
:class:`BatchContent` reads a batch's bytes from wherever they are.

A batch kept in its row is deflated first (``codec = 'zlib'``) when that makes it
at least an eighth smaller, which web batches (JSON) always are, ~5-10x: the commit then writes
and syncs that much less, and the database file grows that much slower. The deflate is ISA-L's
level 1 (``isal``), which for the same CPU as zlib-ng's level 1 (~18 us for a 20 KB batch)
packs tighter (1.9 KB against 2.7 KB for the bench's batch): two such rows share a 4 KiB page
where one 2.7 KB row filled it, and SQLite's CPU per row in a grouped commit went from
~20-31 us to ~12-18 us (sqlite3 microbench; ~80-90 us undeflated). Both write the zlib format,
so rows from either read alike. Every read inflates it back (zlib-ng), so callers only ever
see the bytes as sent. A batch sent gzipped is kept as sent.

On PostgreSQL too: left to TOAST (lz4, migration 0006) a 20 KB JSON batch became ~3.4 KB,
still over TOAST's ~2 KB threshold, so it was moved out of the row, two TOAST chunk rows and
their index entries each in the WAL (~4.0 KB of WAL a batch). Deflated here (~145k
instructions of the writer thread, off the event loop) its row is ~2 KB, which migration
0008's ``toast_tuple_target`` keeps whole in its page: ~2.3 KB of WAL, and PostgreSQL's
processes' CPU per batch ~88 -> ~54 us (bench.cpu_cost --pg-data), more than our server
spends on the deflate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from isal import isal_zlib
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from zlib_ng import zlib_ng

from fieldreport.storage import driver, plainsql
from fieldreport.storage.blobs import BlobStore
from fieldreport.storage.bulk import RowInsert
from fieldreport.storage.db import Database
from fieldreport.storage.schema.sessions import session_batches


@dataclass(frozen=True)
class Batch:
    """A stored batch's row, without its bytes: those are in the blob store under
    ``blob_key`` or, when ``blob_key`` is None, in the row (:func:`inline_batch_data`)."""

    seq: int
    late: bool
    received_at: datetime
    size: int
    encoding: str
    blob_key: str | None

    @property
    def inline(self) -> bool:
        return self.blob_key is None


#: Batches of at most this many bytes (as sent) are stored in their row, committed with it;
#: larger ones go to the blob store (a row holds only their key).
INLINE_BATCH_BYTES = 256 * 1024

#: ``codec`` of a row whose ``data`` the server deflated (zlib format, RFC 1950).
ZLIB = "zlib"


def pack(data: bytes, encoding: str) -> tuple[bytes, str | None]:
    """What to keep in the row for a batch sent as ``data``: deflated (ISA-L level 1: most of
    the size gain for a fraction of the CPU of higher levels; zlib format) when that saves at
    least an eighth, else as sent. A gzip batch is compressed already."""
    if encoding == "gzip" or len(data) < 512:
        return data, None
    packed = isal_zlib.compress(data, 1)
    if len(packed) > len(data) - len(data) // 8:
        return data, None
    return packed, ZLIB


def unpack(data: bytes, codec: str | None) -> bytes:
    """The batch as sent, from a row's ``data`` and ``codec``."""
    if codec is None:
        return data
    if codec == ZLIB:
        return zlib_ng.decompress(data)
    raise ValueError(f"session batch stored with an unknown codec {codec!r}")


@dataclass(slots=True)
class BatchRecord:
    """A batch to count on its session (see :func:`record_batch`): its bytes are ``data``
    (stored in the row) or were stored in the blob store under ``blob_key``.

    One is made per request on the event loop: not frozen, whose ``__init__`` sets each field
    through ``object.__setattr__`` (~3x the cost). Nothing changes it once made."""

    session_id: str
    project_id: int
    late: bool
    received_at: datetime
    size: int
    encoding: str
    blob_key: str | None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if (self.blob_key is None) == (self.data is None):
            raise ValueError("a batch is stored either in its row (data) or as a blob (blob_key)")


# The counter update as plain SQL on the driver's cursor (storage/plainsql.py), in the
# writer's thread on both databases. Through ``conn.execute`` (a Core statement) it cost
# ~100 us of the writer thread's Python (the GIL) per session of a transaction, where the
# rows of all its batches together cost less; ~5 us this way.
_COUNT_BATCHES = (
    "UPDATE sessions SET batch_count = batch_count + ?, byte_count = byte_count + ?,"
    " first_batch_at = coalesce(first_batch_at, ?), last_batch_at = ?"
    " WHERE id = ? AND project_id = ? RETURNING batch_count"
)
# The rows go in as tuples the driver takes (see storage/bulk.py), without a Core
# executemany's per-row parameter processing (~11k instructions a row, callgrind). SQLite: one
# multi-row statement. PostgreSQL: one multi-row INSERT straight on libpq (_pg_insert), the
# batch's bytes as binary bytea; psycopg's executemany cost ~67k instructions a row (its
# Python per row: query conversion, dumpers, pipeline results), and RowInsert's unnest() of
# arrays of 20 KB values cost more in copies (sys time) than it saved (measured with asyncpg).
_BATCH_ROW = (
    "session_id", "seq", "late", "received_at", "size", "encoding", "blob_key", "data", "codec"
)  # fmt: skip
_INSERT_BATCHES = RowInsert(session_batches, _BATCH_ROW)
# PostgreSQL through another driver than psycopg (asyncpg: record_batch on an API connection).
_PG_INSERT_BATCHES = (
    f"INSERT INTO session_batches ({', '.join(_BATCH_ROW)}) "
    f"VALUES ({', '.join('?' * len(_BATCH_ROW))})"
)


def record_batches(conn: Connection, records: list[BatchRecord]) -> list[int | None]:
    """:func:`record_batch` for many batches at once (one counter update per session, one
    multi-row insert); the results are in the order of ``records``."""
    by_session: dict[tuple[str, int], list[int]] = {}
    for i, record in enumerate(records):
        by_session.setdefault((record.session_id, record.project_id), []).append(i)
    seqs: list[int | None] = [None] * len(records)
    rows: list[tuple[Any, ...]] = []
    late = {flag: _INSERT_BATCHES.bind(conn, "late", flag) for flag in (False, True)}
    postgres = conn.dialect.name == "postgresql"
    # Sorted, so concurrent transactions lock session rows in one order (no deadlocks).
    for (session_id, project_id), indexes in sorted(by_session.items()):
        mine = [records[i] for i in indexes]
        # Bound once per batch (its row's value); SQLite's text sorts as the times do.
        times = [_bound_time(conn, r.received_at, postgres) for r in mine]
        counted = plainsql.execute(
            conn,
            _COUNT_BATCHES,
            (len(mine), sum(r.size for r in mine), min(times), max(times), session_id, project_id),
        ).fetchall()
        if not counted:  # no such session in that project
            continue
        first = int(counted[0][0]) - len(mine) + 1
        for offset, (i, record) in enumerate(zip(indexes, mine, strict=True)):
            seqs[i] = first + offset
            # Deflated here, in the writer's thread, off the event loop.
            data, codec = record.data, None
            if data is not None:
                data, codec = pack(data, record.encoding)
            rows.append(
                (
                    record.session_id,
                    first + offset,
                    late[record.late],
                    times[offset],
                    record.size,
                    record.encoding,
                    record.blob_key,
                    data,
                    codec,
                )
            )
    if not rows:
        pass
    elif conn.dialect.driver == "psycopg":  # the batch writer's
        _pg_insert(conn, rows)
    elif postgres:
        plainsql.execute_many(conn, _PG_INSERT_BATCHES, rows)
    else:
        _INSERT_BATCHES.ids(conn, rows)
    return seqs


#: The most rows per PostgreSQL INSERT (9 parameters each; a statement takes at most 65535).
_PG_ROWS_PER_INSERT = 1024
_PG_INSERTS: dict[int, bytes] = {}
_BYTEA = 17  # type OID; the other parameters' types the server infers from their columns
_DATA = _BATCH_ROW.index("data")


def _pg_insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``rows`` (as :func:`record_batches` builds them) as multi-row INSERTs on
    libpq (:func:`driver.pg_exec_params`): every value as its text but the batch's bytes,
    binary (no hex escaping of 2-20 KB). Power-of-two slices of the rows, so the statements
    prepared on the connection (:func:`driver.pg_exec_params`, at most 128) are a few, not
    one per transaction's row count."""
    width = len(_BATCH_ROW)
    for start, size in plainsql.power_of_two_slices(len(rows), _PG_ROWS_PER_INSERT):
        chunk = rows[start : start + size]
        sql = _PG_INSERTS.get(len(chunk))
        if sql is None:
            values = ", ".join(
                "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
                for r in range(len(chunk))
            )
            names = ", ".join(_BATCH_ROW)
            sql = _PG_INSERTS[len(chunk)] = (
                f"INSERT INTO session_batches ({names}) VALUES {values}".encode()
            )
        params: list[bytes | None] = []
        for session_id, seq, late, received_at, size, encoding, blob_key, data, codec in chunk:
            params += (
                session_id.encode(),
                b"%d" % seq,
                b"t" if late else b"f",
                _pg_time(received_at),
                b"%d" % size,
                encoding.encode(),
                None if blob_key is None else blob_key.encode(),
                data,
                None if codec is None else codec.encode(),
            )
        types = _pg_row_types(len(chunk), width, _BYTEA)
        formats = _pg_row_types(len(chunk), width, 1)
        driver.pg_exec_params(conn, sql, params, types, formats)


_row_types: dict[tuple[int, int, int], list[int]] = {}


def _pg_row_types(count: int, width: int, data_value: int) -> list[int]:
    """One entry per parameter of ``count`` rows: 0 but ``data_value`` for each ``data``."""
    key = (count, width, data_value)
    found = _row_types.get(key)
    if found is None:
        row = [0] * width
        row[_DATA] = data_value
        found = _row_types[key] = row * count
    return found


def _pg_time(value: datetime) -> bytes:
    """A ``timestamptz`` parameter's text: ISO 8601 with its offset (never a naive time,
    which the server would read in its session's time zone)."""
    plainsql.refuse_naive(value)
    return value.isoformat().encode()


def _bound_time(conn: Connection, value: datetime, postgres: bool) -> Any:
    """A batch's ``received_at`` as the driver takes it (see :meth:`RowInsert.bind`). On
    SQLite the column's text for a UTC time is made here directly by one fixed format
    (:func:`plainsql.sqlite_utc_text`): ~3x cheaper than the type's bind processing (the
    writer thread's GIL time)."""
    if value.tzinfo is UTC and not postgres:
        return plainsql.sqlite_utc_text(value)
    return _INSERT_BATCHES.bind(conn, "received_at", value)


async def record_batch(
    conn: AsyncConnection,
    *,
    session_id: str,
    project_id: int,
    late: bool,
    received_at: datetime,
    size: int,
    encoding: str,
    blob_key: str | None,
    data: bytes | None = None,
) -> int | None:
    """Count a stored batch on its session and add its row; return its sequence number
    (1, 2, ... in arrival order) or None when the session no longer exists (or belongs to
    another project).

    The counter update locks the session row (PostgreSQL) or runs under SQLite's single
    writer, so concurrent appends to one session get distinct, gap-free numbers.
    """
    record = BatchRecord(session_id, project_id, late, received_at, size, encoding, blob_key, data)
    return (await conn.run_sync(record_batches, [record]))[0]


_BATCH_COLUMNS = (
    session_batches.c.seq,
    session_batches.c.late,
    session_batches.c.received_at,
    session_batches.c.size,
    session_batches.c.encoding,
    session_batches.c.blob_key,
)


async def session_batches_in_order(conn: AsyncConnection, session_id: str) -> list[Batch]:
    """The session's batch rows in sequence order (without the bytes of inline ones)."""
    rows = await conn.execute(
        sa.select(*_BATCH_COLUMNS)
        .where(session_batches.c.session_id == session_id)
        .order_by(session_batches.c.seq)
    )
    return [Batch(*r) for r in rows]


async def get_batch(
    conn: AsyncConnection, session_id: str, seq: int
) -> tuple[Batch, bytes | None] | None:
    """One batch row and, when it is stored inline, its bytes (else None: read the blob)."""
    row = (
        await conn.execute(
            sa.select(*_BATCH_COLUMNS, session_batches.c.data, session_batches.c.codec).where(
                (session_batches.c.session_id == session_id) & (session_batches.c.seq == seq)
            )
        )
    ).first()
    if row is None:
        return None
    data, codec = row[-2:]
    return Batch(*row[:-2]), None if data is None else unpack(bytes(data), codec)


async def inline_batch_data(
    conn: AsyncConnection, session_id: str, first: int, last: int
) -> dict[int, bytes]:
    """The bytes of the session's inline batches numbered ``first`` to ``last``, by number
    (batches in blobs are left out)."""
    rows = await conn.execute(
        sa.select(session_batches.c.seq, session_batches.c.data, session_batches.c.codec).where(
            (session_batches.c.session_id == session_id)
            & session_batches.c.seq.between(first, last)
            & session_batches.c.data.is_not(None)
        )
    )
    return {int(seq): unpack(bytes(data), codec) for seq, data, codec in rows}


#: Inline batches are fetched for a reader this many bytes at a time at most.
READ_PAGE_BYTES = 4 * 1024 * 1024


class BatchGone(LookupError):
    """A batch listed a moment ago is no longer stored (its session was deleted meanwhile)."""


class BatchContent:
    """The bytes of one session's batches, as they were sent: blobs are streamed from the
    blob store; inline batches are fetched from the database in order, a page of rows (up
    to :data:`READ_PAGE_BYTES`) per short read, so a long session is never held whole."""

    def __init__(self, db: Database, blobs: BlobStore, session_id: str, batches: list[Batch]):
        self._db = db
        self._blobs = blobs
        self._session_id = session_id
        self._batches = batches
        self._position = {b.seq: i for i, b in enumerate(batches)}
        self._page: dict[int, bytes] = {}

    async def chunks(self, batch: Batch) -> AsyncIterator[bytes]:
        """One batch's bytes (one of the batches this reader was made for)."""
        if batch.blob_key is not None:
            async for chunk in self._blobs.stream(batch.blob_key):
                yield chunk
            return
        data = self._page.pop(batch.seq, None)
        if data is None:
            await self._fetch_page_from(batch)
            data = self._page.pop(batch.seq, None)
        if data is None:
            raise BatchGone(f"batch {batch.seq} of session {self._session_id} is gone")
        yield data

    async def _fetch_page_from(self, first: Batch) -> None:
        last, total = first.seq, 0
        for i in range(self._position.get(first.seq, len(self._batches)), len(self._batches)):
            batch = self._batches[i]
            if batch.blob_key is not None:
                continue
            if total and total + batch.size > READ_PAGE_BYTES:
                break
            last, total = batch.seq, total + batch.size
        async with self._db.read() as conn:
            self._page = await inline_batch_data(conn, self._session_id, first.seq, last)
