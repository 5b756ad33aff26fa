"""Backend event storage: the pending hold, its sweep, and group commit (both databases)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from fieldreport.retention import collect_garbage
from fieldreport.state import AppState
from fieldreport.storage.backend_events import (
    NewEvent,
    backend_event_dict,
    events_for_recording,
    list_events,
    store_events,
    sweep_pending,
)
from fieldreport.storage.event_writer import EventWriter, WriterOverloaded
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import ReportFields, insert_report
from tests.support.recordings import start_session

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _new(
    project_id: int, recording: str, title: str = "t", ts: int = 1_700_000_000_000
) -> NewEvent:
    return NewEvent(
        project_id=project_id,
        recording=recording,
        type="log",
        level="info",
        timestamp=ts,
        title=title,
        payload="p",
        metadata="",
        origin="here",
    )


async def test_unknown_recordings_are_held_up_to_the_quota(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    rec = str(uuid.uuid4())
    async with state.db.write() as conn:
        results = await conn.run_sync(
            store_events,
            [_new(pid, rec, f"e{i}") for i in range(3)],
            now=T0,
            hold_unknown=True,
            max_pending=2,
        )
    assert [r.status for r in results] == ["pending", "pending", "no_recording"]
    async with state.db.write() as conn:
        refused = await conn.run_sync(
            store_events, [_new(pid, rec)], now=T0, hold_unknown=False, max_pending=100
        )
    assert [r.status for r in refused] == ["no_recording"]


async def test_sweep_attaches_known_and_deletes_expired(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    late_session, by_report, never = (str(uuid.uuid4()) for _ in range(3))
    async with state.db.write() as conn:
        await conn.run_sync(
            store_events,
            [_new(pid, late_session), _new(pid, by_report), _new(pid, never)],
            now=T0,
            hold_unknown=True,
            max_pending=100,
        )
    await start_session(state, pid, late_session)
    async with state.db.write() as conn:
        await insert_report(
            conn,
            report_id=str(uuid.uuid4()),
            project_id=pid,
            created_at=T0,
            fields=ReportFields(subject="s", recording=by_report),
            files=[],
        )
    ttl = timedelta(minutes=10)
    async with state.db.write() as conn:
        early = await sweep_pending(conn, now=T0 + timedelta(minutes=5), ttl=ttl)
    assert (early.attached, early.deleted) == (2, 0)
    async with state.db.write() as conn:
        late = await sweep_pending(conn, now=T0 + timedelta(minutes=11), ttl=ttl)
    assert (late.attached, late.deleted) == (0, 1)
    async with state.db.read() as conn:
        assert len(await events_for_recording(conn, pid, late_session)) == 1
        assert len(await events_for_recording(conn, pid, by_report)) == 1
        assert await list_events(conn, never) == []
        kept = (await events_for_recording(conn, pid, late_session))[0]
    assert kept.pending is False
    view = backend_event_dict(kept)
    assert view["uuid"] == late_session and view["received_at"].startswith("2026-01-01T12:00")


async def test_group_commit_answers_each_request_after_its_commit(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    rec = await start_session(state, pid)
    writer = EventWriter(
        state.writer, state.db, pending_ttl=timedelta(minutes=10), max_pending=10, clock=lambda: T0
    )
    before = state.writer.transactions
    try:
        results = await asyncio.gather(
            *(writer.store([_new(pid, rec, f"e{i}", ts=1_700_000_000_000 + i)]) for i in range(200))
        )
    finally:
        await writer.stop()
    ids = [r[0].event.id for r in results if r[0].event is not None]
    assert len(set(ids)) == 200
    assert writer.events_written == 200
    assert state.writer.transactions - before < 50  # grouped, not one transaction per event
    async with state.db.read() as conn:
        stored = await events_for_recording(conn, pid, rec)
    assert [e.title for e in stored] == [f"e{i}" for i in range(200)]
    assert {e.id for e in stored} == set(ids)


async def test_writer_refuses_when_too_much_is_queued(state: AppState, project: NewProject) -> None:
    writer = EventWriter(
        state.writer, state.db, pending_ttl=timedelta(0), max_pending=0, max_queued=5
    )
    try:
        rec = await start_session(state, project.project.id)
        try:
            await writer.store([_new(project.project.id, rec)] * 6)
        except WriterOverloaded:
            pass
        else:
            raise AssertionError("expected WriterOverloaded")
        assert [r.status for r in await writer.store([_new(project.project.id, rec)] * 5)] == [
            "stored"
        ] * 5
    finally:
        await writer.stop()
    try:
        await writer.store([_new(project.project.id, rec)])
    except WriterOverloaded as exc:
        assert "shutting down" in str(exc)
    else:
        raise AssertionError("a stopped writer must refuse")


async def test_writer_sweeps_expired_pending_events(state: AppState, project: NewProject) -> None:
    now = [T0]
    writer = EventWriter(
        state.writer,
        state.db,
        pending_ttl=timedelta(minutes=10),
        max_pending=10,
        sweep_every=0.01,
        clock=lambda: now[0],
    )
    pid = project.project.id
    never, late = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        [first] = await writer.store([_new(pid, never)])
        assert first.status == "pending"
        await writer.store([_new(pid, late)])
        await start_session(state, pid, late)
        writer.start()
        now[0] = T0 + timedelta(minutes=11)
        for _ in range(500):  # the sweeper runs every 10 ms
            async with state.db.read() as conn:
                if await list_events(conn, never) == []:
                    break
            await asyncio.sleep(0.01)
    finally:
        await writer.stop()
    async with state.db.read() as conn:
        assert await list_events(conn, never) == []
        [kept] = await list_events(conn, late)
    assert kept.pending is False


async def test_writer_stop_commits_what_is_queued(state: AppState, project: NewProject) -> None:
    pid = project.project.id
    rec = await start_session(state, pid)
    writer = EventWriter(state.writer, state.db, pending_ttl=timedelta(0), max_pending=0)
    tasks = [asyncio.create_task(writer.store([_new(pid, rec, f"e{i}")])) for i in range(50)]
    await asyncio.sleep(0)  # let them queue
    await writer.stop()
    results = await asyncio.gather(*tasks)
    assert all(r[0].status == "stored" for r in results)
    async with state.db.read() as conn:
        assert len(await list_events(conn, rec)) == 50


async def test_session_retention_takes_backend_events_along_unless_a_report_names_them(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    forgotten = await start_session(state, pid)
    reported = await start_session(state, pid)
    async with state.db.write() as conn:
        await conn.run_sync(
            store_events,
            [_new(pid, forgotten), _new(pid, reported)],
            now=T0,
            hold_unknown=False,
            max_pending=0,
        )
        await insert_report(
            conn,
            report_id=str(uuid.uuid4()),
            project_id=pid,
            created_at=T0,
            fields=ReportFields(subject="s", recording=reported),
            files=[],
        )
    state.clock = lambda: datetime.now(UTC) + timedelta(days=40)
    done = await collect_garbage(state, 30 * 86400, dry_run=False)
    assert done.sessions == 2
    async with state.db.read() as conn:
        assert await list_events(conn, forgotten) == []
        assert len(await list_events(conn, reported)) == 1  # the report still shows them
