"""Start-up with a database that is not reachable (yet): wait for it, or stop with one clear
line (password hidden, the reason given), never a driver traceback."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from fieldreport.storage.db import Database
from fieldreport.storage.dbwait import DatabaseUnreachable, wait_for_database
from tests.conftest import free_port
from tests.support.proc import fieldreport_cmd, subprocess_env


def closed_port_url(password: str = "sekrit") -> str:
    return f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/nothing"


@contextlib.asynccontextmanager
async def forwarder(listen_port: int, target_port: int) -> AsyncIterator[None]:
    """A TCP relay 127.0.0.1:listen_port -> 127.0.0.1:target_port (PostgreSQL "starting")."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", listen_port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_unreachable_postgres_gives_up_after_the_wait_with_a_clear_reason() -> None:
    db = Database(closed_port_url())
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnreachable) as caught:
            await wait_for_database(db, 1.0)
    finally:
        await db.dispose()
    assert 0.9 <= time.monotonic() - started < 10  # it retried for the time allowed
    message = str(caught.value)
    assert message.startswith("cannot reach the database postgresql://postgres:***@127.0.0.1:")
    assert "sekrit" not in message
    assert "refused" in message.lower()


async def test_postgres_that_comes_up_later_is_waited_for(pg_url: str) -> None:
    port = free_port()
    url = make_url(pg_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    target = make_url(pg_url).port or 5432
    db = Database(url)
    waiting = asyncio.create_task(wait_for_database(db, 30.0))
    try:
        await asyncio.sleep(1.0)
        assert not waiting.done()  # still retrying: nothing listens yet
        async with forwarder(port, target):
            await asyncio.wait_for(waiting, 15)
    finally:
        await db.dispose()


async def test_sqlite_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "fieldreport.db").mkdir()  # a directory where the database file should be
    db = Database(f"sqlite:///{tmp_path / 'fieldreport.db'}")
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnreachable, match="cannot reach the database sqlite:///"):
            await wait_for_database(db, 30.0)
    finally:
        await db.dispose()
    assert time.monotonic() - started < 5  # waiting would not make the file appear


def run_command(command: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fieldreport_cmd(*command),
        env=subprocess_env(
            FIELDREPORT_DATA_DIR=str(tmp_path), FIELDREPORT_PORT=str(free_port()), **env
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["worker"], ["serve"], ["project", "list"]])
def test_commands_say_why_and_exit_1(command: list[str], tmp_path: Path) -> None:
    done = run_command(
        command,
        tmp_path,
        FIELDREPORT_DATABASE_URL=closed_port_url(),
        FIELDREPORT_DATABASE_WAIT="1s",
    )
    assert done.returncode == 1
    assert "error: cannot reach the database postgresql://postgres:***@127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert "sekrit" not in done.stderr + done.stdout


@pytest.mark.parametrize("command", [["worker"], ["serve"], ["project", "list"]])
def test_commands_on_an_unopenable_sqlite_file_say_why_without_a_traceback(
    command: list[str], tmp_path: Path
) -> None:
    (tmp_path / "fieldreport.db").mkdir()  # a directory where the database file should be
    done = run_command(
        command, tmp_path, FIELDREPORT_DATABASE_URL=f"sqlite:///{tmp_path / 'fieldreport.db'}"
    )
    assert done.returncode == 1
    assert "error: cannot reach the database sqlite:///" in done.stderr
    assert "unable to open database file" in done.stderr
    # aiosqlite's connection thread used to print one after the line above, now and then
    assert "Traceback" not in done.stderr, done.stderr
