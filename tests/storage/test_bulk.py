"""RowInsert: prebuilt multi-row inserts on the DBAPI level store exactly what Core would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from fieldreport.state import AppState
from fieldreport.storage.bulk import RowInsert, insert_ids
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.backend_events import backend_events

COLUMNS = ["project_id", "recording", "type", "timestamp", "title", "received_at", "pending"]
INSERT = RowInsert(backend_events, COLUMNS)


def _rows(project_id: int, titles: list[str], at: datetime, pending: bool) -> list[dict[str, Any]]:
    return [
        {
            "project_id": project_id,
            "recording": "rec-bulk",
            "type": "log",
            "timestamp": 1_700_000_000_000 + i,
            "title": title,
            "received_at": at,
            "pending": pending,
        }
        for i, title in enumerate(titles)
    ]


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    shared = {c: INSERT.bind(conn, c, rows[0][c]) for c in ("received_at", "pending")}
    return INSERT.ids(conn, [tuple(shared.get(c, row[c]) for c in COLUMNS) for row in rows])


def _stored(conn: Connection, ids: list[int]) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (driver values: SQLite's timestamp text)."""
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    found = {
        row[0]: tuple(row[1:])
        for row in conn.exec_driver_sql(f"SELECT id, {names} FROM backend_events").all()
    }
    return [found[i] for i in ids]


@pytest.mark.parametrize("microsecond", [0, 123456])  # isoformat() would drop ".000000"
async def test_rows_are_stored_exactly_as_core_stores_them(
    state: AppState, project: NewProject, microsecond: int
) -> None:
    at = datetime(2026, 1, 1, 12, 0, 0, microsecond, tzinfo=UTC)
    rows = _rows(project.project.id, ["plain", "ünïcödé ✓", ""], at, pending=True)
    async with state.db.write() as conn:
        core_ids = await conn.run_sync(insert_ids, backend_events, rows)
        fast_ids = await conn.run_sync(_insert, rows)
        core = await conn.run_sync(_stored, core_ids)
        fast = await conn.run_sync(_stored, fast_ids)
    assert fast == core
    assert fast_ids[0] > core_ids[-1]


async def test_ids_come_back_in_row_order_across_statements(
    state: AppState, project: NewProject
) -> None:
    titles = [f"row {i}" for i in range(300)]  # SQLite: several statements of rows
    async with state.db.write() as conn:
        ids = await conn.run_sync(
            _insert, _rows(project.project.id, titles, datetime.now(UTC), pending=False)
        )
    assert len(set(ids)) == 300
    async with state.db.read() as conn:
        result = await conn.execute(
            sa.select(backend_events.c.id, backend_events.c.title).where(
                backend_events.c.id.in_(ids)
            )
        )
        by_id = {row_id: title for row_id, title in result}
    assert [by_id[i] for i in ids] == titles


async def test_a_bad_row_raises_sqlalchemy_integrity_error(
    state: AppState, project: NewProject
) -> None:
    rows = _rows(project.project.id + 1000, ["no such project"], datetime.now(UTC), False)
    with pytest.raises(sa.exc.IntegrityError):
        async with state.db.write() as conn:
            await conn.run_sync(_insert, rows)


TRICKY = [
    'quote " and \\ backslash',
    '{"json": [1, 2]} \' single',
    "line\nbreak\ttab \x01 control",
    "emoji 🦊 and ünïcödé",
    "x" * 5000,
]


@pytest.mark.parametrize("microsecond", [0, 123456])
async def test_rows_written_by_the_batch_writer_are_stored_exactly_as_core_stores_them(
    state: AppState, project: NewProject, microsecond: int
) -> None:
    """The writer's own connection (psycopg on PostgreSQL: the rows go in as one JSON text)
    stores what Core stores, whatever the text holds."""
    at = datetime(2026, 1, 1, 12, 0, 0, microsecond, tzinfo=UTC)
    rows = _rows(project.project.id, TRICKY, at, pending=False)
    async with state.db.write() as conn:
        core_ids = await conn.run_sync(insert_ids, backend_events, rows)
    fast_ids = await state.writer.submit_many(_insert_job, rows)
    async with state.db.read() as conn:
        core = await conn.run_sync(_stored, core_ids)
        fast = await conn.run_sync(_stored, fast_ids)
    assert fast == core
    assert [row[COLUMNS.index("title")] for row in fast] == TRICKY


@pytest.mark.parametrize("backend", ["postgresql+s3"], indirect=True)  # SQLite: no VARCHAR limit
async def test_a_value_too_long_for_its_column_is_refused_not_cut(
    state: AppState, project: NewProject
) -> None:
    rows = _rows(project.project.id, ["long recording"], datetime.now(UTC), False)
    rows[0]["recording"] = "r" * 65  # varchar(64)
    with pytest.raises(sa.exc.DataError):
        await state.writer.submit_many(_insert_job, rows)


@pytest.mark.parametrize("backend", ["postgresql+s3"], indirect=True)  # SQLite holds NUL
async def test_a_nul_character_is_a_data_error_on_postgresql(
    state: AppState, project: NewProject
) -> None:
    """PostgreSQL's text holds no NUL: the row fails alone (DataError), as with every driver."""
    rows = _rows(project.project.id, ["nul \x00 inside"], datetime.now(UTC), False)
    with pytest.raises(sa.exc.DataError):
        await state.writer.submit_many(_insert_job, rows)


def _insert_job(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    return _insert(conn, rows)
