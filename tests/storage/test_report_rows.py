"""The batch writer's report rows (PostgreSQL: straight on libpq; SQLite: Core) are the rows
Core stores for the same reports: reports, their files, their delivery rows and the ticket
counter, with the same errors for a bad report and the same ticket numbers under
concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.state import AppState
from fieldreport.storage.deliveries import enqueue_report, enqueue_reports
from fieldreport.storage.destinations import NewDestination, add_destination, set_enabled
from fieldreport.storage.projects import NewProject, create_project
from fieldreport.storage.report_writer import NewReport, WrittenReport, write_reports
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report, insert_reports

ZONE = timezone(timedelta(hours=2, minutes=30))


def _reports(project_ids: list[int]) -> list[NewReport]:
    """Reports of every shape: notes with quotes, escapes and non-ASCII text or none, a
    recording or none, times in UTC and another zone, with and without microseconds,
    files of both roles or none."""
    out = []
    for i, project_id in enumerate(project_ids):
        fields = ReportFields(
            subject=f"subject {i} ünïcödé 🦊",
            sendercomment='quote " backslash \\ newline\n tab\t' if i % 2 else "",
            senderemail=f"user{i}@example.test",
            additionalinfo='{"json": [1, 2]}',
            browser="Firefox 140",
            ipaddress="2001:db8::1",
            referer="https://example.test/page?a=1&b=2",
            recording=None if i % 3 else f"rec-{i}",
            notelist=[] if i % 4 == 1 else [f"note {i}", 'say "hi" \\ ✓', "ünï"],
        )
        files = [
            StoredFile("screenshot", 0, "shot.png", "image/png", 1000 + i, "a" * 64, f"k/{i}/s"),
            StoredFile("attachment", 0, "a.txt", "text/plain", 5, "b" * 64, f"k/{i}/a0"),
            StoredFile("attachment", 1, "b b.log", "text/x-log", 2**40, "c" * 64, f"k/{i}/a1"),
        ]
        at = datetime(2026, 6, 1, 12, 0, i, 0 if i % 2 else 123456, tzinfo=UTC if i % 2 else ZONE)
        out.append(NewReport(str(uuid.uuid4()), project_id, at, fields, files[: i % 4]))
    return out


async def _core_insert(conn: AsyncConnection, row: NewReport) -> int:
    """One report through Core on the API's connection (asyncpg on PostgreSQL): its ticket."""
    return await insert_report(
        conn,
        report_id=row.report_id,
        project_id=row.project_id,
        created_at=row.created_at,
        fields=row.fields,
        files=row.files,
    )


async def _core(conn: AsyncConnection, rows: list[NewReport]) -> None:
    """The same reports through Core on the API's connection (asyncpg on PostgreSQL)."""
    for row in rows:
        await _core_insert(conn, row)
        await enqueue_report(
            conn, report_id=row.report_id, project_id=row.project_id, now=row.created_at
        )


async def _stored(conn: AsyncConnection, report_ids: list[str]) -> list[tuple[Any, ...]]:
    """Each report's rows as the driver reads them (JSON as its stored text on both
    databases, SQLite's times as their text), without the ids the database chose: the
    report's row, its files' rows and its delivery rows."""
    out = []
    for report_id in report_ids:
        report = (
            await conn.exec_driver_sql(
                "SELECT project_id, ticketnr, created_at, subject, sendercomment, senderemail,"
                " additionalinfo, browser, ipaddress, referer, recording, CAST(notelist AS TEXT)"
                f" FROM reports WHERE id = '{report_id}'"
            )
        ).one()
        files = (
            await conn.exec_driver_sql(
                "SELECT role, position, filename, content_type, size, sha256, blob_key"
                f" FROM report_files WHERE report_id = '{report_id}' ORDER BY id"
            )
        ).all()
        delivered = (
            await conn.exec_driver_sql(
                "SELECT project_id, destination_id, position, status, attempts, total_attempts,"
                " next_attempt_at, lease_owner, lease_expires_at, last_error, last_status_code,"
                " created_at, updated_at, delivered_at"
                f" FROM deliveries WHERE report_id = '{report_id}' ORDER BY id"
            )
        ).all()
        out.append((tuple(report), [tuple(f) for f in files], [tuple(d) for d in delivered]))
    return out


async def _projects(state: AppState, project: NewProject) -> list[int]:
    """Three projects: one with a disabled primary and an enabled backup, one with no
    destination, and ``project`` with one destination."""
    async with state.db.write() as conn:
        chained = (await create_project(conn, "chained")).project.id
        bare = (await create_project(conn, "bare")).project.id
        first = await add_destination(
            conn, chained, NewDestination("http://127.0.0.1:9/a", "json"), backup=False
        )
        await set_enabled(conn, first.id, False, "test")
        await add_destination(
            conn, chained, NewDestination("http://127.0.0.1:9/b", "json"), backup=True
        )
        await add_destination(
            conn, project.project.id, NewDestination("http://127.0.0.1:9/c", "json"), backup=False
        )
    return [chained, bare, project.project.id]


def _twins(rows: list[NewReport]) -> list[NewReport]:
    """The same reports under new ids (and their files under new blob keys)."""
    return [
        NewReport(
            str(uuid.uuid4()),
            r.project_id,
            r.created_at,
            r.fields,
            [StoredFile(**{**f.__dict__, "blob_key": f.blob_key + "-core"}) for f in r.files],
        )
        for r in rows
    ]


async def test_the_writers_rows_are_cores_rows(state: AppState, project: NewProject) -> None:
    """Twelve reports of three projects in one writer job, and the same reports inserted by
    Core afterwards: row for row equal, ticket numbers apart, delivery rows only for the
    projects with an enabled destination (the first enabled in the chain)."""
    ids = await _projects(state, project)
    rows = _reports([ids[i % 3] for i in range(12)])
    written = await state.writer.submit_many(write_reports, rows)
    twins = _twins(rows)
    async with state.db.write() as conn:
        await _core(conn, twins)
    async with state.db.read() as conn:
        mine = await _stored(conn, [r.report_id for r in rows])
        core = await _stored(conn, [r.report_id for r in twins])
    # Ticket numbers: the writer's first (1-4 per project, in row order), then Core's.
    assert [w.ticketnr for w in written] == [i // 3 + 1 for i in range(12)]
    assert [m[0][1] for m in mine] == [w.ticketnr for w in written]
    assert [c[0][1] for c in core] == [w.ticketnr + 4 for w in written]
    assert [w.delivery_id is None for w in written] == [i % 3 == 1 for i in range(12)]
    for m, c in zip(mine, core, strict=True):
        assert (m[0][:1] + m[0][2:], m[2]) == (c[0][:1] + c[0][2:], c[2])
        assert [f[:-1] for f in m[1]] == [f[:-1] for f in c[1]]
        assert [f[-1] + "-core" for f in m[1]] == [f[-1] for f in c[1]]
    assert all(len(m[2]) == (0 if m[0][0] == ids[1] else 1) for m in mine)


async def test_ticket_numbers_stay_gap_free_under_concurrency(
    state: AppState, project: NewProject
) -> None:
    """Writer jobs and Core's single inserts on the API's connections, all at once: every
    report gets its own number, 1..N without gaps, the one stored with it."""
    pid = project.project.id
    rows = _reports([pid] * 30)

    async def core(row: NewReport) -> int:
        async with state.db.write() as conn:
            return await _core_insert(conn, row)

    writer = [state.writer.submit_many(write_reports, rows[i : i + 3]) for i in range(0, 20, 3)]
    numbers = await asyncio.gather(*(core(r) for r in rows[21:]), *writer)
    got = [n for n in numbers if isinstance(n, int)]
    got += [w.ticketnr for found in numbers if isinstance(found, list) for w in found]
    assert sorted(got) == list(range(1, 31))
    async with state.db.read() as conn:
        stored = (
            await conn.execute(
                sa.text("SELECT ticketnr FROM reports WHERE project_id = :p"), {"p": pid}
            )
        ).scalars()
        assert sorted(stored) == list(range(1, 31))


async def test_a_bad_report_fails_alone(state: AppState, project: NewProject) -> None:
    """In one transaction: a report whose id is taken (IntegrityError), one of a deleted
    project (LookupError), two good ones. The bad callers get their error and nothing of
    theirs is stored; the good ones commit with consecutive numbers."""
    pid = project.project.id
    first = _reports([pid])[0]
    await state.writer.submit_many(write_reports, [first])
    good, good_too, gone, taken = _reports([pid, pid, pid + 1000, pid])
    taken = NewReport(first.report_id, pid, taken.created_at, taken.fields, taken.files)
    futures = [
        state.writer.submit_many(write_reports, [row]) for row in (good, taken, gone, good_too)
    ]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert outcomes[0] == [WrittenReport(2, outcomes[0][0].delivery_id)]  # type: ignore[index]
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert isinstance(outcomes[2], LookupError)
    assert outcomes[3] == [WrittenReport(3, None)]
    async with state.db.read() as conn:
        count = (await conn.execute(sa.text("SELECT count(*) FROM reports"))).scalar()
        last = (
            await conn.execute(
                sa.text("SELECT last_ticketnr FROM projects WHERE id = :p"), {"p": pid}
            )
        ).scalar()
    assert (count, last) == (3, 3)


@pytest.mark.parametrize("notes", [[], ["a"], ["x" * 3000, "ü", '"', "\\"]])
async def test_notes_are_stored_as_core_stores_them(
    state: AppState, project: NewProject, notes: list[str]
) -> None:
    """The notes column (JSON) holds the very text Core writes for the list."""
    row = _reports([project.project.id])[0]
    row = NewReport(row.report_id, row.project_id, row.created_at, ReportFields(notelist=notes), [])
    twin = _twins([row])[0]
    await state.writer.submit_many(write_reports, [row])
    async with state.db.write() as conn:
        await _core(conn, [twin])
    async with state.db.read() as conn:
        texts = [
            (
                await conn.exec_driver_sql(
                    f"SELECT CAST(notelist AS TEXT) FROM reports WHERE id = '{r}'"
                )
            ).scalar()
            for r in (row.report_id, twin.report_id)
        ]
    assert texts[0] == texts[1]
    assert isinstance(texts[0], str)


def _separately(conn: Connection, rows: list[NewReport]) -> list[WrittenReport]:
    """The report writer's steps one by one (PostgreSQL: each its own statement on libpq)."""
    ticketnrs = insert_reports(conn, rows)
    ids = enqueue_reports(conn, [(r.report_id, r.project_id, r.created_at) for r in rows])
    return [WrittenReport(t, d) for t, d in zip(ticketnrs, ids, strict=True)]


async def test_insert_and_enqueue_alone_store_the_writers_rows(
    state: AppState, project: NewProject
) -> None:
    """insert_reports and enqueue_reports called apart on the writer's connection (on
    PostgreSQL not folded into one statement with the destinations' lookup) store what
    write_reports stores."""
    ids = await _projects(state, project)
    rows = _reports([ids[i % 3] for i in range(6)])
    twins = _twins(rows)
    written = await state.writer.submit_many(write_reports, rows)
    alone = await state.writer.submit_many(_separately, twins)
    assert [w.ticketnr + 2 for w in written] == [a.ticketnr for a in alone]
    assert [w.delivery_id is None for w in written] == [a.delivery_id is None for a in alone]
    async with state.db.read() as conn:
        mine = await _stored(conn, [r.report_id for r in rows])
        other = await _stored(conn, [r.report_id for r in twins])
    for m, o in zip(mine, other, strict=True):
        assert (m[0][:1] + m[0][2:], m[2]) == (o[0][:1] + o[0][2:], o[2])
        assert [f[:-1] for f in m[1]] == [f[:-1] for f in o[1]]


async def test_a_value_its_column_refuses_fails_alone(state: AppState, project: NewProject) -> None:
    """PostgreSQL: a sender email over its column's 320 characters is the database's
    DataError, as through Core, for that caller only (SQLite does not hold VARCHAR to its
    length: stored)."""
    pid = project.project.id
    good, bad = _reports([pid, pid])
    fields = ReportFields(senderemail="x" * 321, notelist=["n"])
    bad = NewReport(bad.report_id, pid, bad.created_at, fields, bad.files)
    futures = [state.writer.submit_many(write_reports, [row]) for row in (good, bad)]
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    assert outcomes[0] == [WrittenReport(1, None)]
    if state.db.is_sqlite:
        assert outcomes[1] == [WrittenReport(2, None)]
        return
    assert isinstance(outcomes[1], sa.exc.DataError)
    async with state.db.read() as conn:
        ids = (await conn.execute(sa.text("SELECT id FROM reports"))).scalars().all()
    assert ids == [good.report_id]
