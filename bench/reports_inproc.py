"""Reports driven in-process: CPU per report of the loop thread and of the other threads.

    python -m bench.reports_inproc [--requests 2000] [--concurrency 32] [--chunk 65536]
                                   [--asyncio] [--postgresql]
    valgrind --tool=callgrind --separate-threads=yes \\
        python -m bench.reports_inproc --requests 300 --callgrind

``--requests`` reports (the reports bench's body: a 200 KB PNG screenshot and 11 text
fields, multipart/form-data) go to ``POST /api/v1/reports`` through the app's own ASGI
entry (middleware, the key cache, the form parser, the real local blob store and the real
SQLite batch writer, in a temporary directory, or with ``--postgresql`` in a throw-away
database on the local PostgreSQL server; on uvloop as ``serve`` runs, or with
``--asyncio`` on asyncio's own loop), ``--concurrency`` at a time, the body in
``--chunk``-byte ``http.request`` messages as a server hands them on; no sockets or HTTP
parser: what is left is the app's own work. Printed per report: wall, the process's CPU
and the loop thread's (both user + system), and the other threads' (the difference: file
writes, hashing, the flush, the batch writer). Under callgrind, ``--callgrind`` zeroes the
counters before the measured requests and dumps them after (``callgrind_control``), so the
dump of the main thread divided by ``--requests`` is the loop thread's instructions per
report: repeatable whatever else the machine runs. Run it with two checkouts' ``src``
first on ``PYTHONPATH`` to compare them.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.inproc import bench_app, chosen_database, measure, post
from bench.payloads import report_multipart, screenshot_png

PATH = "/api/v1/reports"


async def run(args: argparse.Namespace, database_url: str | None = None) -> None:
    from fieldreport.gc_tuning import settle_after_startup

    async with bench_app("reports-inproc-", database_url, parent=args.dir) as bench:
        app, state, project = bench.app, bench.state, bench.project
        body, content_type = report_multipart(screenshot_png())
        pieces = [body[i : i + args.chunk] for i in range(0, len(body), args.chunk)]
        headers = [
            (b"content-type", content_type.encode()),
            (b"x-fieldreport-key", project.public_key.encode()),
            (b"content-length", b"%d" % len(body)),
        ]

        async def once() -> None:
            status, answer = await post(app, PATH, headers, pieces)
            assert status == 201, answer

        for _ in range(args.warmup):  # caches, the writer's and the store's threads
            await once()
        if args.freeze:
            settle_after_startup()  # as `serve` does after start-up
        cost = await measure(once, args.requests, args.concurrency, under_callgrind=args.callgrind)
        print(
            f"{args.requests} reports, {args.concurrency} at a time:"
            f" wall {cost.wall:.1f} µs, CPU {cost.cpu:.1f} µs"
            f" (loop thread {cost.loop:.1f}, other threads {cost.cpu - cost.loop:.1f})"
            f" per report; {state.writer.transactions} transactions"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=65536, help="bytes per body message")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--dir", default=None, help="where the temporary data directory goes")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument(
        "--asyncio", action="store_true", help="asyncio's own loop, not uvloop (as `serve` runs)"
    )
    parser.add_argument("--postgresql", action="store_true", help="a fresh local database")
    parser.set_defaults(freeze=True)
    args = parser.parse_args()
    with chosen_database(args.postgresql) as url:
        _run(args, url)


def _run(args: argparse.Namespace, database_url: str | None) -> None:
    if args.asyncio:
        asyncio.run(run(args, database_url))
    else:
        import uvloop

        uvloop.run(run(args, database_url))


if __name__ == "__main__":
    main()
