"""Batch writers of several processes on one SQLite file take turns through a file lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from fieldreport.storage.db import Database
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.projects import list_projects
from fieldreport.storage.writer import BatchWriter
from fieldreport.storage.writer_turns import SUFFIX, WriterTurns
from tests.storage.test_writer import add_projects


async def test_a_writer_waits_for_the_turn_another_process_holds(tmp_path: Path) -> None:
    db_file = tmp_path / "fieldreport.db"
    db = Database(f"sqlite:///{db_file}")
    await upgrade(db)
    writer = BatchWriter(db)
    try:
        await writer.submit(add_projects, "first")  # the lock file exists from here on
        lock_path = Path(str(db_file) + SUFFIX)
        assert lock_path.is_file()
        # Another process's writer (its own open file: flock excludes it like a process)
        other = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            pending = asyncio.ensure_future(writer.submit(add_projects, "second"))
            await asyncio.sleep(0.3)
            assert not pending.done()  # waiting for its turn, not written past it
            fcntl.flock(other, fcntl.LOCK_UN)
            await asyncio.wait_for(pending, 10)
        finally:
            os.close(other)
        async with db.read() as conn:
            names = {p.name for p in await list_projects(conn)}
        assert {"first", "second"} <= names
    finally:
        await writer.close()
        await db.dispose()


async def test_two_writers_on_one_file_alternate_and_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fieldreport.db'}"
    db_a, db_b = Database(url), Database(url)
    await upgrade(db_a)
    a, b = BatchWriter(db_a), BatchWriter(db_b)
    try:
        names = [f"{side}{i}" for i in range(60) for side in "ab"]
        await asyncio.gather(
            *((a if name[0] == "a" else b).submit(add_projects, name) for name in names)
        )
        async with db_a.read() as conn:
            stored = {p.name for p in await list_projects(conn)}
        assert set(names) <= stored
        assert a.transactions and b.transactions
    finally:
        await a.close()
        await b.close()
        await db_a.dispose()
        await db_b.dispose()


def test_no_turns_without_a_database_file(tmp_path: Path) -> None:
    assert WriterTurns(None).path is None
    with WriterTurns(None).turn():
        pass
    assert Database("sqlite:///:memory:").sqlite_file is None
    assert Database("postgresql://u@127.0.0.1/x").sqlite_file is None
    assert Database(f"sqlite:///{tmp_path / 'x.db'}").sqlite_file == str(tmp_path / "x.db")


def test_a_lock_file_that_cannot_be_opened_leaves_the_writer_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-directory" / "fieldreport.db"
    turns = WriterTurns(str(missing))
    with turns.turn():
        pass
    with turns.turn():  # warned once
        pass
    warnings = [r for r in caplog.records if "lock file" in r.getMessage()]
    assert len(warnings) == 1
    assert "will not take turns" in warnings[0].getMessage()
