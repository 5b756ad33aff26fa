"""Full-stack events driven in-process: CPU per event of the loop thread and of the rest.

    python -m bench.events_inproc [--requests 5000] [--concurrency 32] [--postgresql]
    valgrind --tool=callgrind --separate-threads=yes \\
        python -m bench.events_inproc --requests 2000 --callgrind

``--requests`` 300-byte events (the events bench's) go to ``/api/fullstack/v1/send``
through the app's own ASGI entry (express lane, middleware, the real batch writer on SQLite
in a temporary directory, or with ``--postgresql`` in a throw-away database on the local
PostgreSQL server), ``--concurrency`` at a time, with no sockets or HTTP parser: what is
left is the app's own work. Each event names a started recording (stored, not pending).
Printed: wall, process CPU and the loop thread's CPU per event (the writer thread is the
difference). Under callgrind, ``--callgrind`` zeroes the counters before the measured
requests and dumps them after, so the dump (one file per thread) divided by ``--requests``
is instructions per event. Run it with two checkouts' ``src`` first on ``PYTHONPATH`` to
compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.inproc import bench_app, chosen_database, measure, post
from bench.payloads import fullstack_event


async def run(args: argparse.Namespace, database_url: str | None = None) -> None:
    from fieldreport.gc_tuning import settle_after_startup

    async with bench_app("events-inproc-", database_url) as bench:
        app, state, project = bench.app, bench.state, bench.project
        start = json.dumps({"projectKey": project.public_key, "trackerVersion": "bench/1"})
        headers = [(b"content-type", b"application/json")]
        status, body = await post(app, "/v1/web/start", headers, [start.encode()])
        assert status == 200, body
        event = fullstack_event(json.loads(body)["sessionID"])
        headers = [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {project.secret_key}".encode()),
            (b"content-length", b"%d" % len(event)),
        ]

        async def once() -> None:
            status, body = await post(app, "/api/fullstack/v1/send", headers, [event])
            assert status == 200, body

        for _ in range(500):  # warm-up: caches, the writer's thread and connection
            await once()
        settle_after_startup()  # as `serve` does after start-up
        cost = await measure(once, args.requests, args.concurrency, under_callgrind=args.callgrind)
        print(
            f"{args.requests} events, {args.concurrency} at a time:"
            f" wall {cost.wall:.1f} µs, CPU {cost.cpu:.1f} µs"
            f" (loop thread {cost.loop:.1f}) per event;"
            f" {state.writer.transactions} transactions"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help="a fresh local database")
    args = parser.parse_args()
    with chosen_database(args.postgresql) as url:
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
