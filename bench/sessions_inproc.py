"""Session batches driven in-process: CPU per batch of the loop thread and of the rest.

    python -m bench.sessions_inproc [--requests 3000] [--concurrency 32] [--stub-writer]
                                    [--postgresql]
    valgrind --tool=callgrind --separate-threads=yes \\
        python -m bench.sessions_inproc --requests 500 --callgrind

``--requests`` 20 KB web batches (the sessions bench's) go to ``/v1/web/append`` through the
app's own ASGI entry (express lane, middleware, the real batch writer on SQLite in a
temporary directory, or with ``--postgresql`` in a throw-away database on the local
PostgreSQL server, as the benchmarks use), ``--concurrency`` at a time, with no sockets or
HTTP parser: what is left is the app's own work. Printed: wall, process CPU and the loop
thread's CPU per batch (the writer thread is the difference). ``--stub-writer`` answers
``submit_many`` at once (no thread, no SQL): the request path alone. Under callgrind,
``--callgrind`` zeroes the counters before the measured requests and dumps them after
(``callgrind_control``), so the dump (one file per thread) divided by ``--requests`` is
instructions per batch: repeatable whatever else the machine runs. Run it with two
checkouts' ``src`` first on ``PYTHONPATH`` to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.sessions_append import events_batch

Headers = list[tuple[bytes, bytes]]


def _scope(path: str, headers: Headers, length: int) -> dict[str, Any]:
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
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            *headers,
            (b"content-length", b"%d" % length),
        ],
        "state": {},
    }


async def _post(app: Any, path: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # nobody disconnects here
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path, headers, len(body)), receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _callgrind(command: str) -> None:
    subprocess.run(["callgrind_control", command, str(os.getpid())], check=True)


async def run(args: argparse.Namespace, database_url: str | None = None) -> None:
    work = Path(tempfile.mkdtemp(prefix="sessions-inproc-"))
    try:
        await _measure(args, work / "data", database_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _measure(args: argparse.Namespace, data_dir: Path, database_url: str | None) -> None:
    from fieldreport.app import create_app
    from fieldreport.gc_tuning import settle_after_startup
    from fieldreport.settings import Settings
    from fieldreport.state import open_state
    from fieldreport.storage.projects import create_project

    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        log_level="warning",
        session_rate_sessions=0,
        session_rate_bytes=0,
    )
    state = await open_state(settings)
    async with state.db.write() as conn:
        project = await create_project(conn, "bench")
    app = create_app(settings, state=state)
    batch = events_batch(20_000)
    async with app.router.lifespan_context(app):
        start = json.dumps({"projectKey": project.public_key, "trackerVersion": "bench/1"})
        status, body = await _post(app, "/v1/web/start", [], start.encode())
        assert status == 200, body
        auth = [(b"authorization", f"Bearer {json.loads(body)['token']}".encode())]
        if args.stub_writer:
            numbers = iter(range(1, 1 << 62))

            async def answer_at_once(job: Any, items: list[Any]) -> list[Any]:
                return [next(numbers) for _ in items]

            state.writer.submit_many = answer_at_once  # type: ignore[method-assign, assignment]
        for _ in range(200):  # warm-up: caches, the writer's thread and connection
            status, body = await _post(app, "/v1/web/append", auth, batch)
            assert status == 200, body
        if args.freeze:
            settle_after_startup()  # as `serve` does after start-up
        remaining = args.requests

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                status, body = await _post(app, "/v1/web/append", auth, batch)
                assert status == 200, body

        if args.callgrind:
            _callgrind("-z")
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        wall, cpu, loop = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            time.thread_time() - loop,
        )
        if args.callgrind:
            _callgrind("-d")
        n = args.requests
        stubbed = " (writer stubbed)" if args.stub_writer else ""
        print(
            f"{n} batches, {args.concurrency} at a time{stubbed}:"
            f" wall {wall / n * 1e6:.1f} µs, CPU {cpu / n * 1e6:.1f} µs"
            f" (loop thread {loop / n * 1e6:.1f}) per batch;"
            f" {state.writer.transactions} transactions"
        )
    await state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stub-writer", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help="a fresh local database")
    parser.set_defaults(freeze=True)
    args = parser.parse_args()
    if args.postgresql:
        from bench.servers import postgres_database

        with postgres_database() as url:
            asyncio.run(run(args, url))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
