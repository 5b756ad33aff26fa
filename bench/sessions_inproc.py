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
from typing import Any

from bench.inproc import Headers, bench_app, chosen_database, measure, post
from bench.sessions_append import events_batch


async def _post(app: Any, path: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
    json_headers = [(b"content-type", b"application/json"), *headers]
    json_headers.append((b"content-length", b"%d" % len(body)))
    return await post(app, path, json_headers, [body])


async def run(args: argparse.Namespace, database_url: str | None = None) -> None:
    from fieldreport.gc_tuning import settle_after_startup

    batch = events_batch(20_000)
    async with bench_app("sessions-inproc-", database_url) as bench:
        app, state, project = bench.app, bench.state, bench.project
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

        async def once() -> None:
            status, body = await _post(app, "/v1/web/append", auth, batch)
            assert status == 200, body

        cost = await measure(once, args.requests, args.concurrency, under_callgrind=args.callgrind)
        stubbed = " (writer stubbed)" if args.stub_writer else ""
        print(
            f"{args.requests} batches, {args.concurrency} at a time{stubbed}:"
            f" wall {cost.wall:.1f} µs, CPU {cost.cpu:.1f} µs"
            f" (loop thread {cost.loop:.1f}) per batch;"
            f" {state.writer.transactions} transactions"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stub-writer", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help="a fresh local database")
    parser.set_defaults(freeze=True)
    args = parser.parse_args()
    with chosen_database(args.postgresql) as url:
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
