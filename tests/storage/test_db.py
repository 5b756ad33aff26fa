"""The storage layer on SQLite and PostgreSQL: migrations, projects, keys, reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from fieldreport.keys import hash_key
from fieldreport.storage.db import Database, async_url, psycopg_url
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.projects import (
    ProjectExists,
    create_project,
    find_by_key,
    get_project,
    list_projects,
    origin_known,
    project_by_key,
    rotate_key,
    set_origins,
)
from fieldreport.storage.reports import (
    ReportFields,
    StoredFile,
    count_reports,
    get_report,
    insert_report,
    list_reports,
)
from fieldreport.storage.schema.core import projects


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    await upgrade(database)  # idempotent
    yield database
    await database.dispose()


def test_async_url_mapping() -> None:
    assert async_url("sqlite:///x.db").startswith("sqlite+aiosqlite:///")
    assert async_url("postgresql://u:p@h/db").startswith("postgresql+asyncpg://u:p@h/db")
    with pytest.raises(ValueError, match="unsupported database"):
        async_url("mysql://h/db")


def test_psycopg_url_for_the_batch_writer() -> None:
    """The batch writer's psycopg engine reaches the database the asyncpg pool does, with
    the URL's options in libpq's names."""
    url = psycopg_url(async_url("postgres://u:p@h:5433/db?ssl=require"))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "p",
        "h",
        5433,
        "db",
    )
    assert dict(url.query) == {"sslmode": "require"}
    url = psycopg_url("postgresql://h/db?prepared_statement_cache_size=0&application_name=fr")
    assert dict(url.query) == {"application_name": "fr"}


async def test_keys_are_stored_hashed(db: Database) -> None:
    async with db.write() as conn:
        created = await create_project(conn, "acme")
    async with db.read() as conn:
        row = (await conn.execute(sa.select(projects))).one()._mapping
        assert created.public_key not in row.values() and created.secret_key not in row.values()
        assert row["secret_key_hash"] == hash_key(created.secret_key)
        assert (await project_by_key(conn, created.public_key, "public")) is not None
        assert (await project_by_key(conn, created.public_key, "secret")) is None
        assert (await project_by_key(conn, created.secret_key, "secret")) is not None
    async with db.write() as conn:
        with pytest.raises(ProjectExists):
            await create_project(conn, "acme")


async def test_rotation_invalidates_old_key(db: Database) -> None:
    async with db.write() as conn:
        created = await create_project(conn, "acme")
        new_public = await rotate_key(conn, created.project.id, "public")
    async with db.read() as conn:
        assert await project_by_key(conn, created.public_key, "public") is None
        assert await project_by_key(conn, new_public, "public") is not None
        assert await project_by_key(conn, created.secret_key, "secret") is not None


async def test_origins(db: Database) -> None:
    async with db.write() as conn:
        created = await create_project(conn, "acme")
        origins = await set_origins(
            conn, created.project.id, add=["https://a.example", "https://b.example"], remove=[]
        )
        assert origins == ["https://a.example", "https://b.example"]
        origins = await set_origins(
            conn, created.project.id, add=["https://a.example"], remove=["https://b.example"]
        )
        assert origins == ["https://a.example"]
    async with db.read() as conn:
        assert await origin_known(conn, "https://a.example")
        assert not await origin_known(conn, "https://b.example")
        found = await get_project(conn, "acme")
        assert found is not None and found.origins == ["https://a.example"]
        assert await get_project(conn, str(created.project.id)) == found
        assert [p.name for p in await list_projects(conn)] == ["acme"]


async def test_reports_roundtrip_and_ticket_numbers_are_per_project(db: Database) -> None:
    async with db.write() as conn:
        a = (await create_project(conn, "a")).project
        b = (await create_project(conn, "b")).project
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    shot = StoredFile(
        "screenshot", 0, "s.png", "image/png", 10, "ab" * 32, "reports/1/x/screenshot.png"
    )

    async def add(project_id: int, n: int) -> int:
        async with db.write() as conn:
            return await insert_report(
                conn,
                report_id=f"00000000-0000-4000-8000-{project_id:06d}{n:06d}",
                project_id=project_id,
                created_at=when,
                fields=ReportFields(subject=f"s{n}", notelist=["x", "y"], recording="rec-1"),
                files=[shot] if n == 0 else [],
            )

    assert [await add(a.id, n) for n in range(3)] == [1, 2, 3]
    assert await add(b.id, 0) == 1
    async with db.read() as conn:
        first = await get_report(conn, f"00000000-0000-4000-8000-{a.id:06d}000000")
        assert first is not None
        assert first.created_at == when and first.created_at.tzinfo is not None
        assert first.fields.notelist == ["x", "y"] and first.fields.recording == "rec-1"
        assert first.screenshot == shot and first.attachments == []
        assert [r.ticketnr for r in await list_reports(conn, project_id=a.id)] == [3, 2, 1]
        assert [
            r.ticketnr
            for r in await list_reports(conn, project_id=a.id, before_ticketnr=3, limit=1)
        ] == [2]
        assert await count_reports(conn) == 4 and await count_reports(conn, b.id) == 1


async def test_concurrent_reports_get_distinct_ticket_numbers(db: Database) -> None:
    async with db.write() as conn:
        p = (await create_project(conn, "busy")).project

    async def add(n: int) -> int:
        async with db.write() as conn:
            return await insert_report(
                conn,
                report_id=f"00000000-0000-4000-8000-{n:012d}",
                project_id=p.id,
                created_at=datetime.now(UTC),
                fields=ReportFields(),
                files=[],
            )

    numbers = await asyncio.gather(*(add(n) for n in range(30)))
    assert sorted(numbers) == list(range(1, 31))


async def test_run_read_sees_committed_rows_and_raises_the_functions_errors(db: Database) -> None:
    async with db.write() as conn:
        created = await create_project(conn, "reader")
        await set_origins(conn, created.project.id, add=["https://app.example"], remove=[])

    found = await asyncio.gather(
        *(db.run_read(find_by_key, created.public_key, "public") for _ in range(20))
    )
    assert {p.name for p in found if p} == {"reader"}
    assert found[0] is not None and found[0].origins == ["https://app.example"]
    assert await db.run_read(find_by_key, created.public_key, "secret") is None

    def broken(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(sa.exc.DBAPIError):
        await db.run_read(broken)
    async with db.write() as conn:  # a rotation is seen by the next read
        await conn.execute(projects.delete().where(projects.c.id == created.project.id))
    assert await db.run_read(find_by_key, created.public_key, "public") is None
