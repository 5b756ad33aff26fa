"""SQLite group commit: concurrent write blocks share one transaction and one commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fieldreport.storage.db import Database
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.projects import ProjectExists, create_project, list_projects


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gc.db'}", group_commit=True)
    await upgrade(database)
    yield database
    await database.dispose()


def count_commits(database: Database) -> list[int]:
    commits = [0]

    @sa.event.listens_for(database.engine.sync_engine, "commit")
    def _on_commit(_conn: object) -> None:
        commits[0] += 1

    return commits


async def test_concurrent_writes_commit_together_and_are_visible(db: Database) -> None:
    commits = count_commits(db)

    async def one(i: int) -> None:
        async with db.write() as conn:
            await create_project(conn, f"p{i}")

    await asyncio.gather(*(one(i) for i in range(20)))
    async with db.read() as conn:  # every block returned only after its commit
        assert len(await list_projects(conn)) == 20
    assert 1 <= commits[0] < 20


async def test_a_failing_block_rolls_back_alone(db: Database) -> None:
    async with db.write() as conn:
        await create_project(conn, "taken")

    async def ok(i: int) -> None:
        async with db.write() as conn:
            await create_project(conn, f"ok{i}")

    async def dup() -> None:
        async with db.write() as conn:
            await create_project(conn, "taken")

    async def raises() -> None:
        async with db.write() as conn:
            await create_project(conn, "never")
            raise RuntimeError("boom")

    results = await asyncio.gather(ok(1), dup(), ok(2), raises(), ok(3), return_exceptions=True)
    assert results[0] is None and results[2] is None and results[4] is None
    assert isinstance(results[1], ProjectExists)
    assert isinstance(results[3], RuntimeError)
    async with db.read() as conn:
        names = sorted(p.name for p in await list_projects(conn))
    assert names == ["ok1", "ok2", "ok3", "taken"]


async def test_a_failed_commit_fails_every_block_of_the_batch(db: Database) -> None:
    @sa.event.listens_for(db.engine.sync_engine, "commit")
    def _fail(_conn: object) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))

    async def one(i: int) -> None:
        async with db.write() as conn:
            await create_project(conn, f"lost{i}")

    results = await asyncio.gather(*(one(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, sa.exc.OperationalError) for r in results)
    sa.event.remove(db.engine.sync_engine, "commit", _fail)
    async with db.read() as conn:
        assert await list_projects(conn) == []
    async with db.write() as conn:  # the writer recovers
        await create_project(conn, "after")
    async with db.read() as conn:
        assert [p.name for p in await list_projects(conn)] == ["after"]


def test_usable_from_successive_event_loops(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'loops.db'}", group_commit=True)

    async def step(name: str) -> None:
        if name == "a":
            await upgrade(database)
        async with database.write() as conn:
            await create_project(conn, name)

    asyncio.run(step("a"))
    asyncio.run(step("b"))

    async def names() -> list[str]:
        async with database.read() as conn:
            found = [p.name for p in await list_projects(conn)]
        await database.dispose()
        return found

    assert asyncio.run(names()) == ["a", "b"]
