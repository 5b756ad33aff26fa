"""Driving the app in-process, for the ``*_inproc`` benchmarks: requests go through the
app's own ASGI entry (no sockets, no HTTP parser), and the CPU they cost is read around a
bounded number of them, or counted by callgrind between a zero and a dump of its counters."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Headers = list[tuple[bytes, bytes]]


@dataclass
class BenchApp:
    """The app of :func:`bench_app`, its state and its one project."""

    app: Any
    state: Any
    project: Any


@contextmanager
def chosen_database(postgresql: bool) -> Iterator[str | None]:
    """The database of an in-process run (``--postgresql``): a throw-away database on the
    local PostgreSQL server, dropped afterwards, or ``None`` (SQLite in :func:`bench_app`'s
    temporary data directory)."""
    if not postgresql:
        yield None
        return
    from bench.servers import postgres_database

    with postgres_database() as url:
        yield url


@asynccontextmanager
async def bench_app(
    prefix: str, database_url: str | None = None, *, parent: str | None = None
) -> AsyncIterator[BenchApp]:
    """A fresh app on a temporary data directory (under ``parent``), with a project
    ``bench`` and the session rate limits off, its lifespan entered; the directory is
    removed afterwards. fieldreport is imported here, so that a run under callgrind or
    with another build's ``PYTHONPATH`` imports the build it means."""
    from fieldreport.app import create_app
    from fieldreport.settings import Settings
    from fieldreport.state import open_state
    from fieldreport.storage.projects import create_project

    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        settings = Settings(
            data_dir=work / "data",
            database_url=database_url,
            log_level="warning",
            session_rate_sessions=0,
            session_rate_bytes=0,
        )
        state = await open_state(settings)
        try:
            async with state.db.write() as conn:
                project = await create_project(conn, "bench")
            app = create_app(settings, state=state)
            async with app.router.lifespan_context(app):
                yield BenchApp(app, state, project)
        finally:
            await state.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scope(path: str, headers: Headers) -> dict[str, Any]:
    """An HTTP ``POST`` scope for ``path`` from loopback (``headers`` after ``host``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "state": {},
    }


async def post(app: Any, path: str, headers: Headers, pieces: list[bytes]) -> tuple[int, bytes]:
    """``POST`` the body ``pieces`` (one ``http.request`` message each) to ``app``: its
    status and answer body."""
    sent: list[dict[str, Any]] = []
    last = len(pieces) - 1
    messages = iter(
        [
            {"type": "http.request", "body": piece, "more_body": i < last}
            for i, piece in enumerate(pieces)
        ]
    )

    async def receive() -> dict[str, Any]:
        message = next(messages, None)
        if message is None:  # nobody disconnects here
            await asyncio.Event().wait()
        assert message is not None
        return message

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(path, headers), receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def callgrind(command: str) -> None:
    """Under callgrind: zero (``-z``) or dump (``-d``) this process's counters."""
    subprocess.run(["callgrind_control", command, str(os.getpid())], check=True)


@dataclass
class Cost:
    """Per request, in microseconds: wall time, the process's CPU and its loop thread's."""

    wall: float
    cpu: float
    loop: float


async def measure(
    once: Callable[[], Awaitable[None]],
    requests: int,
    concurrency: int,
    *,
    under_callgrind: bool = False,
) -> Cost:
    """Run ``once`` ``requests`` times, ``concurrency`` at a time, and what each cost (the
    calling thread is the loop thread). ``under_callgrind``: the counters cover just these."""
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await once()

    if under_callgrind:
        callgrind("-z")
    wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall, cpu, loop = (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        time.thread_time() - loop,
    )
    if under_callgrind:
        callgrind("-d")
    return Cost(wall / requests * 1e6, cpu / requests * 1e6, loop / requests * 1e6)
