"""The claim path's batches on SQLite: attempt rows inserted in power-of-two slices (few
statement texts), the due query reading only as many rows as can be claimed unless some may be
skipped, and UTC timestamps written as the same text Core writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage import driver, outbox
from fieldreport.storage.bulk import RowInsert
from fieldreport.storage.outbox import claim_due_sync
from fieldreport.storage.plainsql import binder, sqlite_slices, sqlite_utc_text
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.base import UTCDateTime
from fieldreport.storage.schema.delivery import deliveries
from tests.delivery.helpers import FakeClock, add_dest, submit


def test_slices_are_powers_of_two_largest_first() -> None:
    rows = list(range(37))
    got = list(sqlite_slices(rows, 2))
    assert [len(chunk) for _, chunk, _ in got] == [32, 4, 1]
    assert [start for start, _, _ in got] == [0, 32, 36]
    assert [x for _, chunk, _ in got for x in chunk] == rows
    assert got[2][2] == "(?, ?)"
    assert got[1][2] == ", ".join(["(?, ?)"] * 4)


def test_slices_stay_within_sqlite_parameter_limit() -> None:
    # 999 // 8 = 124 rows a statement: the largest slice is 64 rows.
    sizes = [len(chunk) for _, chunk, _ in sqlite_slices(list(range(300)), 8)]
    assert sizes == [64, 64, 64, 64, 32, 8, 4]
    assert sum(sizes) == 300


def test_row_insert_uses_few_statement_texts() -> None:
    meta = sa.MetaData()
    table = sa.Table(
        "items", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
    )
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    insert = RowInsert(table, ["name"])
    texts: set[str] = set()
    real = driver.execute

    def spy(conn: Any, sql: str, params: Any = ()) -> Any:
        texts.add(sql)
        return real(conn, sql, params)

    with pytest.MonkeyPatch.context() as mp, engine.begin() as conn:
        mp.setattr("fieldreport.storage.bulk.driver.execute", spy)
        ids: list[int] = []
        for n in range(1, 40):
            ids += insert.ids(conn, [(f"{n}-{i}",) for i in range(n)])
        found = conn.execute(sa.select(table.c.id, table.c.name).order_by(table.c.id)).all()
    total = sum(range(1, 40))
    assert ids == list(range(1, total + 1))
    assert [name for _, name in found] == [f"{n}-{i}" for n in range(1, 40) for i in range(n)]
    # The max(id) query and one INSERT per power of two up to 32: 7 texts, not 40.
    assert len(texts) == 7


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: still six digits
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2026, 6, 1, 2, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_sqlite_utc_text_is_what_core_writes(value: datetime) -> None:
    dialect = sa.create_engine("sqlite://").dialect
    column = sa.Column("at", UTCDateTime())
    core = column.type.dialect_impl(dialect).bind_processor(dialect)
    assert core is not None
    assert binder(dialect, column)(value) == core(value)
    assert sqlite_utc_text(value.astimezone(UTC)) == core(value)


async def _due_reports(
    state: AppState, project: NewProject, client: httpx.AsyncClient, n: int
) -> FakeClock:
    await add_dest(state, project, "http://127.0.0.1:9/hook")
    for i in range(n):
        await submit(client, project, subject=f"due {i}")
    clock = FakeClock()
    clock.sync()
    return clock


async def _claim(
    state: AppState, clock: FakeClock, limits: list[int], **kw: Any
) -> list[outbox.Claim]:
    real = outbox.execute

    def spy(conn: Any, sql: str, params: Any = ()) -> Any:
        if sql.startswith("SELECT id, report_id"):
            limits.append(params[-1])
        return real(conn, sql, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(outbox, "execute", spy)
        async with state.db.write() as conn:
            return await conn.run_sync(
                lambda c: claim_due_sync(c, owner="w", now=clock(), lease=30, **kw)
            )


async def test_due_query_reads_only_the_limit_when_nothing_can_be_skipped(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    clock = await _due_reports(state, project, client, 3)
    limits: list[int] = []
    claims = await _claim(state, clock, limits, limit=2)
    assert len(claims) == 2
    assert limits == [2]
    claims += await _claim(state, clock, limits, limit=2, room={}, default_room=5)
    assert len(claims) == 3
    assert limits == [2, 2]
    async with state.db.read() as conn:
        owners = (await conn.execute(sa.select(deliveries.c.lease_owner))).scalars().all()
    assert owners == ["w"] * 3


async def test_due_query_reads_more_when_a_destination_has_less_room(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    clock = await _due_reports(state, project, client, 3)
    async with state.db.read() as conn:
        dest_id = (await conn.execute(sa.select(deliveries.c.destination_id))).scalars().first()
    assert dest_id is not None
    limits: list[int] = []
    claims = await _claim(state, clock, limits, limit=3, room={dest_id: 1})
    assert len(claims) == 1  # the destination's room, not the limit
    assert limits == [6]
    claims = await _claim(state, clock, limits, limit=3, default_room=2)
    assert len(claims) == 2
    assert limits == [6, 6]
