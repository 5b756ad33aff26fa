"""Server CPU time per accepted request, fieldreport beside the bare ceiling:

    python -m bench.cpu_cost [--endpoint reports,events,sessions] [--seconds 4]
                             [--database-url URL] [--src OTHER/src]

Each server process's user + system CPU time (all its threads, from /proc) is read before
and after a wrk load; divided by the 2xx answers, that is what one request costs the
server. Unlike requests/s, this hardly moves when other jobs share the machine, so two
builds can be compared on a busy 2-core box: run it once per checkout (``--src``), or read
``ceiling / fieldreport``, which is the throughput ratio the server could reach if it were
CPU-bound (it is, under load: 93-101% of a core). Loopback only, bounded by ``--seconds``.

The loop thread's share is printed too: every request's Python code runs on the process's
main thread, while the SQLite writer, file writes and hashing run on others that can use the
second core. ``ceiling / loop thread`` is what the rate could reach if that thread alone were
the limit (the ceiling is one thread).

And, from fieldreport's own ``/metrics`` around the same run (bench/commits.py): requests per
committed transaction and blob flushes per request that waited for one (reports). Fewer
requests per commit means more commits for the same requests: CPU per request is not the
only thing two builds can differ in.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import commits, servers, wrk
from bench.measure import cluster_cpu_seconds, cpu_seconds, loop_cpu_seconds
from bench.suite import endpoints


def cost(
    pids: list[int],
    url: str,
    body: bytes,
    headers: dict[str, str],
    seconds: float,
    pg_data: Path | None = None,
    metrics_url: str | None = None,
) -> dict[str, Any]:
    wrk.run(url, seconds=1, body=body, headers=headers)  # warm-up
    # wrk closes its connections at the end, but the server still finishes the requests in
    # flight (their rows commit regardless). Let those drain, or the measured run's first
    # requests find the ingest route full and are shed with 503.
    time.sleep(1.0)
    counters = commits.scrape([metrics_url]) if metrics_url else None  # outside the CPU reading
    before, loop_before = cpu_seconds(pids), loop_cpu_seconds(pids)
    pg_before = cluster_cpu_seconds(pg_data) if pg_data else 0.0
    res = wrk.run(url, seconds=seconds, body=body, headers=headers)
    used = cpu_seconds(pids) - before
    loop_used = loop_cpu_seconds(pids) - loop_before
    pg_used = cluster_cpu_seconds(pg_data) - pg_before if pg_data else 0.0
    counted = commits.moved(counters, commits.scrape([metrics_url])) if counters else {}
    ok = res["requests"] - res["errors"]
    return {
        "commits": counted,
        "pg_us": round(pg_used / ok * 1e6, 1) if ok else float("nan"),
        "ok": ok,
        "errors": res["errors"],
        "rps": res["rps"],
        "cpu_us": round(used / ok * 1e6, 1) if ok else float("nan"),
        "loop_us": round(loop_used / ok * 1e6, 1) if ok else float("nan"),
        "cpu_share": round(used / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="reports,events,sessions")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--src", type=Path, default=servers.SRC, help="the build to run")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument(
        "--pg-data",
        type=Path,
        default=None,
        help="the data directory of the PostgreSQL cluster that --database-url names: its"
        " processes' CPU per request is printed too (server + PostgreSQL = the machine's)",
    )
    args = parser.parse_args()
    wanted = set(args.endpoint.split(","))
    with (
        servers.scratch("cpucost") as work,
        servers.fieldreport(
            1, work, args.database_url, src=args.src.resolve(), **servers.NO_SESSION_RATE_LIMITS
        ) as fr,
        servers.bare(1, work) as bare,
    ):
        for ep in endpoints(fr):
            if ep.name not in wanted:
                continue
            ours = cost(
                fr.pids,
                fr.urls(ep.path)[0],
                ep.body,
                ep.headers,
                args.seconds,
                args.pg_data,
                fr.urls("/metrics")[0],
            )
            line = (
                f"{ep.name:9} fieldreport {ours['cpu_us']:8.1f} µs/req"
                f" (loop thread {ours['loop_us']:.1f})"
                f"  ({ours['rps']:.0f}/s, cpu {ours['cpu_share']}, errors {ours['errors']})"
            )
            if args.pg_data:
                line += (
                    f"  postgres {ours['pg_us']:.1f} µs/req,"
                    f" together {ours['cpu_us'] + ours['pg_us']:.1f}"
                )
            if not args.no_ceiling:
                ceil = cost(bare.pids, bare.urls("/ingest")[0], ep.body, ep.headers, args.seconds)
                ratio = ceil["cpu_us"] / ours["cpu_us"]
                loop_ratio = ceil["cpu_us"] / ours["loop_us"]
                line += (
                    f"   ceiling {ceil['cpu_us']:7.1f} µs/req   cpu ratio {ratio:.2f}"
                    f" (to the loop thread {loop_ratio:.2f})"
                )
            print(line, flush=True)
            print(f"{'':9} {commits.describe(ours['commits'])}", flush=True)


if __name__ == "__main__":
    main()
