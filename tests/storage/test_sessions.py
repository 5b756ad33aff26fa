"""Session queries and retention on SQLite + local blobs and PostgreSQL + S3."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from fieldreport.retention import collect_garbage, start_retention, sweep_orphaned_batches
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report
from fieldreport.storage.schema.sessions import session_batches, sessions
from fieldreport.storage.session_batches import record_batch, session_batches_in_order
from fieldreport.storage.sessions import (
    NewSession,
    Session,
    get_session,
    insert_session,
    record_image,
    reports_naming_session,
)
from tests.support.sessions import FakeClock


async def _session_with_batches(
    state: AppState, project_id: int, n: int, *, platform: str = "web", inline: int = 0
) -> str:
    """A session with ``n`` batches in blobs, then ``inline`` batches stored in their rows."""
    sid = str(uuid.uuid4())
    now = state.clock()
    async with state.db.write() as conn:
        await insert_session(
            conn,
            NewSession(
                id=sid, project_id=project_id, platform=platform, user_uuid="u", started_at=now
            ),
        )
    for i in range(n + inline):
        key = f"sessions/{project_id}/{sid}/{i}" if i < n else None  # blobs first, then rows
        if key is not None:
            await state.blobs.put_bytes(key, b"[{}]")
        async with state.db.write() as conn:
            await record_batch(
                conn,
                session_id=sid,
                project_id=project_id,
                late=False,
                received_at=now,
                size=4,
                encoding="",
                blob_key=key,
                data=None if key is not None else b"[{}]",
            )
    return sid


async def test_concurrent_appends_get_distinct_sequence_numbers(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    sid = await _session_with_batches(state, pid, 0)

    async def one(i: int) -> int | None:
        async with state.db.write() as conn:
            return await record_batch(
                conn,
                session_id=sid,
                project_id=pid,
                late=False,
                received_at=state.clock(),
                size=10,
                encoding="",
                blob_key=f"k/{i}",
            )

    seqs = await asyncio.gather(*(one(i) for i in range(20)))
    assert sorted(s for s in seqs if s is not None) == list(range(1, 21))
    got = await get_session_or_fail(state, sid)
    assert got.batch_count == 20 and got.byte_count == 200
    async with state.db.write() as conn:  # the token's project must be the session's
        assert (
            await record_batch(
                conn,
                session_id=sid,
                project_id=pid + 1,
                late=False,
                received_at=state.clock(),
                size=1,
                encoding="",
                blob_key="k/x",
            )
            is None
        )


async def get_session_or_fail(state: AppState, sid: str) -> Session:
    async with state.db.read() as conn:
        found = await get_session(conn, sid)
    assert found is not None
    return found


async def test_gc_removes_old_sessions_but_reports_keep_their_files(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    clock = FakeClock()
    state.clock = clock
    old = await _session_with_batches(state, pid, 3, inline=2)
    async with state.db.write() as conn:
        await record_image(
            conn,
            project_id=pid,
            hash="a" * 32,
            size=3,
            content_type="image/png",
            blob_key=f"session-images/{pid}/{'a' * 32}",
            now=clock.now,
        )
    await state.blobs.put_bytes(f"session-images/{pid}/{'a' * 32}", b"img")
    shot_key = f"reports/{pid}/r1/screenshot.png"
    await state.blobs.put_bytes(shot_key, b"png")
    report_id = str(uuid.uuid4())
    async with state.db.write() as conn:
        await insert_report(
            conn,
            report_id=report_id,
            project_id=pid,
            created_at=clock.now,
            fields=ReportFields(subject="s", recording=old),
            files=[StoredFile("screenshot", 0, "s.png", "image/png", 3, "x", shot_key)],
        )
        assert [r.reportid for r in await reports_naming_session(conn, pid, old)] == [report_id]
    clock.advance(20 * 86400)
    recent = await _session_with_batches(state, pid, 2, inline=1)
    clock.advance(11 * 86400)

    dry = await collect_garbage(state, 30 * 86400, dry_run=True)
    assert (dry.sessions, dry.batches, dry.bytes, dry.images) == (1, 5, 20, 1)
    assert len([k async for k in state.blobs.list("sessions")]) == 5

    done = await collect_garbage(state, 30 * 86400, dry_run=False)
    assert (done.sessions, done.batches, done.images, done.blob_errors) == (1, 5, 1, 0)
    async with state.db.read() as conn:
        ids = [r[0] for r in await conn.execute(sa.select(sessions.c.id))]
        n_batches = (
            await conn.execute(sa.select(sa.func.count()).select_from(session_batches))
        ).scalar()
        assert len(await session_batches_in_order(conn, recent)) == 3
    assert ids == [recent] and n_batches == 3
    left = sorted([k async for k in state.blobs.list("sessions")])
    assert left == sorted(f"sessions/{pid}/{recent}/{i}" for i in range(2))
    assert [k async for k in state.blobs.list("session-images")] == []
    assert await state.blobs.get_bytes(shot_key) == b"png"  # the report keeps its screenshot

    again = await collect_garbage(state, 30 * 86400, dry_run=False)
    assert again.sessions == 0


async def test_retention_service_collects_at_start(state: AppState, project: NewProject) -> None:
    clock = FakeClock()
    state.clock = clock
    await _session_with_batches(state, project.project.id, 1)
    clock.advance(3 * 86400)
    stop = await start_retention(state)  # off by default: nothing happens
    await stop()
    assert len([k async for k in state.blobs.list("sessions")]) == 1

    state.settings = state.settings.model_copy(update={"session_retention": 2 * 86400.0})
    stop = await start_retention(state)
    try:
        for _ in range(500):
            if not [k async for k in state.blobs.list("sessions")]:
                break
            await asyncio.sleep(0.01)
    finally:
        await stop()
    async with state.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(sessions))).scalar() == 0


async def test_sweep_deletes_only_blobs_of_sessions_that_are_gone(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    alive = await _session_with_batches(state, pid, 2)
    gone = str(uuid.uuid4())
    for i in range(3):
        await state.blobs.put_bytes(f"sessions/{pid}/{gone}/{i}", b"[]")
    await state.blobs.put_bytes(f"session-images/{pid}/{'b' * 32}", b"img")  # not a batch

    assert await sweep_orphaned_batches(state, dry_run=True) == (3, 0)
    assert len([k async for k in state.blobs.list("sessions")]) == 5
    assert await sweep_orphaned_batches(state, dry_run=False) == (3, 0)
    left = sorted([k async for k in state.blobs.list("sessions")])
    assert left == sorted(f"sessions/{pid}/{alive}/{i}" for i in range(2))
    assert [k async for k in state.blobs.list("session-images")] != []
