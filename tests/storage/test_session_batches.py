"""Batch rows and their bytes (in the row or in a blob) on SQLite + local blobs and
PostgreSQL + S3."""

from __future__ import annotations

import gzip
import os
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from zlib_ng import zlib_ng

from fieldreport.state import AppState
from fieldreport.storage import session_batches as module
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.sessions import session_batches, sessions
from fieldreport.storage.session_batches import (
    BatchContent,
    BatchGone,
    BatchRecord,
    get_batch,
    pack,
    record_batch,
    record_batches,
    session_batches_in_order,
    unpack,
)
from fieldreport.storage.sessions import NewSession, delete_sessions, insert_session
from tests.support.sessions import stored_batches


async def _session(state: AppState, project_id: int) -> str:
    sid = str(uuid.uuid4())
    async with state.db.write() as conn:
        await insert_session(
            conn,
            NewSession(
                id=sid,
                project_id=project_id,
                platform="ios",
                user_uuid="u",
                started_at=state.clock(),
            ),
        )
    return sid


async def _add(state: AppState, project_id: int, sid: str, data: bytes, *, blob: bool) -> int:
    key = None
    if blob:
        key = f"sessions/{project_id}/{sid}/{uuid.uuid4().hex}"
        await state.blobs.put_bytes(key, data)
    async with state.db.write() as conn:
        seq = await record_batch(
            conn,
            session_id=sid,
            project_id=project_id,
            late=False,
            received_at=state.clock(),
            size=len(data),
            encoding="",
            blob_key=key,
            data=None if blob else data,
        )
    assert seq is not None
    return seq


@pytest.mark.parametrize(("page_bytes", "reads_expected"), [(1, 6), (25, 5), (4 << 20, 1)])
async def test_content_reads_rows_and_blobs_in_order(
    state: AppState,
    project: NewProject,
    monkeypatch: pytest.MonkeyPatch,
    page_bytes: int,
    reads_expected: int,
) -> None:
    monkeypatch.setattr(module, "READ_PAGE_BYTES", page_bytes)
    pid = project.project.id
    sid = await _session(state, pid)
    places = [False, False, True, False, True, True, False, False, False]
    sent = [f"batch {i} ".encode() * (i + 1) for i in range(len(places))]
    for data, blob in zip(sent, places, strict=True):
        await _add(state, pid, sid, data, blob=blob)

    reads = 0
    real = module.inline_batch_data

    async def counted(*args: object) -> dict[int, bytes]:
        nonlocal reads
        reads += 1
        return await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "inline_batch_data", counted)
    got = await stored_batches(state, sid)
    assert [data for _, data in got] == sent
    assert [b.inline for b, _ in got] == [not blob for blob in places]
    # One read per page of rows: each inline batch alone (1 byte), a few, or all at once.
    assert reads == reads_expected


async def test_get_batch_gives_a_rows_bytes_or_its_blob_key(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    sid = await _session(state, pid)
    await _add(state, pid, sid, b"\x00inline", blob=False)
    await _add(state, pid, sid, b"\x00blob", blob=True)
    async with state.db.read() as conn:
        inline = await get_batch(conn, sid, 1)
        blob = await get_batch(conn, sid, 2)
        assert await get_batch(conn, sid, 3) is None
    assert inline is not None and blob is not None
    assert inline[0].inline and inline[1] == b"\x00inline" and inline[0].size == 7
    assert not blob[0].inline and blob[1] is None and blob[0].blob_key is not None
    assert await state.blobs.get_bytes(blob[0].blob_key) == b"\x00blob"


async def test_a_batch_is_in_exactly_one_place(state: AppState, project: NewProject) -> None:
    pid = project.project.id
    sid = await _session(state, pid)
    now = state.clock()
    with pytest.raises(ValueError, match="either"):
        BatchRecord(sid, pid, False, now, 1, "", None, None)
    with pytest.raises(ValueError, match="either"):
        BatchRecord(sid, pid, False, now, 1, "", "sessions/k", b"x")
    row: dict[str, Any] = {"session_id": sid, "late": False, "received_at": now, "size": 1}
    for seq, (key, data) in enumerate([(None, None), ("sessions/k", b"x")], start=1):
        with pytest.raises(IntegrityError):  # the CHECK constraint, on both databases
            async with state.db.write() as conn:
                await conn.execute(
                    session_batches.insert().values(seq=seq, blob_key=key, data=data, **row)
                )


async def test_delete_sessions_returns_only_blob_keys(state: AppState, project: NewProject) -> None:
    pid = project.project.id
    sid = await _session(state, pid)
    other = await _session(state, pid)
    for blob in (False, True, False, True):
        await _add(state, pid, sid, b"[]", blob=blob)
    await _add(state, pid, other, b"[]", blob=False)
    async with state.db.read() as conn:
        keys = [b.blob_key for b in await session_batches_in_order(conn, sid) if b.blob_key]
    assert len(keys) == 2
    async with state.db.write() as conn:
        assert sorted(await delete_sessions(conn, [sid])) == sorted(keys)
        assert await delete_sessions(conn, [other]) == []  # inline only: nothing to delete
    async with state.db.read() as conn:
        left = await conn.execute(sa.select(sa.func.count()).select_from(session_batches))
        assert left.scalar() == 0


async def test_a_reader_of_a_deleted_session_says_the_batch_is_gone(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    sid = await _session(state, pid)
    await _add(state, pid, sid, b"[1]", blob=False)
    async with state.db.read() as conn:
        batches = await session_batches_in_order(conn, sid)
    async with state.db.write() as conn:
        await conn.execute(session_batches.delete())
        await conn.execute(sessions.delete())
    content = BatchContent(state.db, state.blobs, sid, batches)
    with pytest.raises(BatchGone):
        [chunk async for chunk in content.chunks(batches[0])]


async def test_batches_in_rows_are_deflated_when_it_pays_and_read_back_as_sent(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    sid = await _session(state, pid)
    web = b'[{"type":3,"timestamp":1700000000000,"data":{"source":1,"x":12}}' + b",{}" * 900 + b"]"
    noise = os.urandom(20_000)  # e.g. a mobile tracker's own compressed messages
    tiny = b"[]"
    gzipped = gzip.compress(web)
    for data in (web, noise, tiny):
        await _add(state, pid, sid, data, blob=False)
    async with state.db.write() as conn:
        await record_batch(
            conn,
            session_id=sid,
            project_id=pid,
            late=False,
            received_at=state.clock(),
            size=len(gzipped),
            encoding="gzip",
            blob_key=None,
            data=gzipped,
        )
    async with state.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(session_batches.c.seq, session_batches.c.codec, session_batches.c.data)
                .where(session_batches.c.session_id == sid)
                .order_by(session_batches.c.seq)
            )
        ).all()
        assert [bytes(r.data) for r in rows[1:]] == [noise, tiny, gzipped]
        assert [r.codec for r in rows[1:]] == [None, None, None]
        # Only the JSON batch is kept deflated (and much smaller), on either database.
        assert rows[0].codec == "zlib" and len(rows[0].data) < len(web) // 4
        # Every read gives the bytes as sent, with their size as sent.
        for seq, sent in enumerate((web, noise, tiny, gzipped), start=1):
            found = await get_batch(conn, sid, seq)
            assert found is not None and found[1] == sent and found[0].size == len(sent)
    assert [data for _, data in await stored_batches(state, sid)] == [web, noise, tiny, gzipped]


async def test_one_transaction_counts_batches_of_many_sessions(
    state: AppState, project: NewProject
) -> None:
    """The batch writer's job: batches of several sessions interleaved in one transaction get
    each session's next numbers and counters; an unknown session, or one of another project,
    gets None and no row."""
    pid = project.project.id
    a, b = await _session(state, pid), await _session(state, pid)
    await _add(state, pid, a, b"[{}]", blob=False)  # a's first batch, in an earlier transaction
    start = state.clock()
    times = [start + timedelta(milliseconds=i) for i in range(6)]
    records = [
        BatchRecord(sid, project_id, False, at, 10 + i, "", None, b"[{}]")
        for i, (sid, project_id, at) in enumerate(
            [
                (b, pid, times[3]),
                (a, pid, times[1]),
                (str(uuid.uuid4()), pid, times[0]),  # no such session
                (b, pid, times[2]),
                (a, pid + 1, times[0]),  # the token's project must be the session's
                (a, pid, times[5]),
            ]
        )
    ]
    assert await state.writer.submit_many(record_batches, records) == [1, 2, None, 2, None, 3]
    async with state.db.read() as conn:
        found = {
            r.id: r
            for r in await conn.execute(sa.select(sessions).where(sessions.c.id.in_([a, b])))
        }
        rows = (
            await conn.execute(
                sa.select(
                    session_batches.c.session_id,
                    session_batches.c.seq,
                    session_batches.c.received_at,
                    session_batches.c.size,
                )
                .where(session_batches.c.session_id.in_([a, b]))
                .order_by(session_batches.c.session_id, session_batches.c.seq)
            )
        ).all()
    assert (found[a].batch_count, found[a].byte_count) == (3, 4 + 11 + 15)
    assert (found[b].batch_count, found[b].byte_count) == (2, 10 + 13)
    assert found[a].first_batch_at < start  # kept from its first batch
    assert found[a].last_batch_at == times[5]
    assert (found[b].first_batch_at, found[b].last_batch_at) == (times[2], times[3])
    assert sorted((r.session_id, r.seq, r.received_at, r.size) for r in rows) == sorted(
        [
            (a, 1, found[a].first_batch_at, 4),
            (a, 2, times[1], 11),
            (a, 3, times[5], 15),
            (b, 1, times[3], 10),
            (b, 2, times[2], 13),
        ]
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 23, 5, 9, 42, 267972, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: still six digits
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # not UTC
    ],
)
def test_a_batch_time_is_bound_as_the_column_binds_it(at: datetime) -> None:
    """The SQLite shortcut for received_at gives the text SQLAlchemy's type would."""
    dialect = sqlite.dialect()
    column_type = session_batches.c.received_at.type.dialect_impl(dialect)
    process = column_type.bind_processor(dialect)
    assert process is not None

    class Conn:  # all _bound_time reads of a connection
        pass

    conn: Any = Conn()
    conn.dialect = dialect
    assert module._bound_time(conn, at, postgres=False) == process(at)


def test_pack_and_unpack() -> None:
    text = b'{"type":2}' * 100
    packed, codec = pack(text, "")
    assert codec == "zlib" and unpack(packed, codec) == text
    assert zlib.decompress(packed) == text  # the zlib format (RFC 1950), whoever inflates it
    # rows deflated by earlier builds (zlib-ng level 1) still read back
    assert unpack(zlib_ng.compress(text, 1), "zlib") == text
    assert pack(text, "gzip") == (text, None)
    assert pack(b"{}" * 100, "") == (b"{}" * 100, None)  # under 512 bytes: as sent
    assert pack(b"{}" * 300, "")[1] == "zlib"
    with pytest.raises(ValueError, match="unknown codec 'br'"):
        unpack(b"x", "br")


async def test_the_writers_rows_hold_every_value_as_given(
    state: AppState, project: NewProject
) -> None:
    """The batch writer's insert (PostgreSQL: one multi-row statement on libpq, the bytes
    binary) stores each column as Core reads it back: flags, a time given in another zone,
    NULLs, bytes of any value; a value its column refuses fails the job, storing nothing."""
    pid = project.project.id
    sid = await _session(state, pid)
    at = datetime(2026, 6, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    raw = bytes(range(256)) * 3  # NUL, backslashes, quotes, high bytes; does not deflate
    key = f"sessions/{pid}/{sid}/blob"
    records = [
        BatchRecord(sid, pid, True, at, len(raw), "gzip", None, raw),
        BatchRecord(sid, pid, False, at + timedelta(seconds=1), 7, "", key),
        BatchRecord(sid, pid, False, at, 2, "", None, b"[]"),
    ]
    assert await state.writer.submit_many(record_batches, records) == [1, 2, 3]
    columns = [c for c in session_batches.c if c.name not in ("id", "session_id")]
    async with state.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(*columns)
                .where(session_batches.c.session_id == sid)
                .order_by(session_batches.c.seq)
            )
        ).all()
    assert [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows] == [
        (1, True, at, len(raw), "gzip", None, raw, None),
        (2, False, at + timedelta(seconds=1), 7, "", key, None, None),
        (3, False, at, 2, "", None, b"[]", None),
    ]
    if state.db.is_sqlite:  # SQLite does not hold VARCHAR to its length
        return
    too_long = BatchRecord(sid, pid, False, at, 2, "x" * 17, None, b"[]")  # varchar(16)
    with pytest.raises(sa.exc.DataError):
        await state.writer.submit_many(record_batches, [records[2], too_long])
    async with state.db.read() as conn:
        count = (
            await conn.execute(sa.select(sessions.c.batch_count).where(sessions.c.id == sid))
        ).scalar()
    assert count == 3


async def test_a_naive_batch_time_fails_the_job_and_stores_nothing(
    state: AppState, project: NewProject
) -> None:
    """A time without a zone would be read in some other zone (PostgreSQL: the connection's):
    the writer refuses it on both databases, as the column type does, and the transaction
    with it stores nothing."""
    pid = project.project.id
    sid = await _session(state, pid)
    fine = BatchRecord(sid, pid, False, state.clock(), 2, "", None, b"[]")
    naive = BatchRecord(sid, pid, False, datetime(2026, 6, 1, 14, 0), 2, "", None, b"[]")
    with pytest.raises(ValueError, match="naive datetime"):
        await state.writer.submit_many(record_batches, [fine, naive])
    async with state.db.read() as conn:
        count = (
            await conn.execute(sa.select(sessions.c.batch_count).where(sessions.c.id == sid))
        ).scalar()
    assert count == 0
    assert await stored_batches(state, sid) == []


async def test_a_transactions_rows_go_in_as_power_of_two_statements(
    state: AppState, project: NewProject
) -> None:
    """37 batches in one job are stored in order, through statements of 32, 4 and 1 rows
    (PostgreSQL prepares each statement on the writer's connection: a few texts, not one
    per row count)."""
    pid = project.project.id
    sid = await _session(state, pid)
    at = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    sent = [b"[%d]" % i for i in range(37)]
    records = [BatchRecord(sid, pid, False, at, len(data), "", None, data) for data in sent]
    module._PG_INSERTS.clear()
    assert await state.writer.submit_many(record_batches, records) == list(range(1, 38))
    if not state.db.is_sqlite:
        assert sorted(module._PG_INSERTS) == [1, 4, 32]
    async with state.db.read() as conn:
        stored = {seq: await get_batch(conn, sid, seq) for seq in range(1, 38)}
    assert [found[1] for found in stored.values() if found] == sent
