"""A bounded HTTP load generator (aiohttp), run as a separate process.

    python -m bench.loadgen URL --requests 20000 --concurrency 64 --seconds 10 [--body-bytes 300]

Prints one JSON line: {"requests", "ok", "errors", "seconds", "rps", "p50_ms", "p99_ms"}.
Every loop is bounded by both a request count and a time limit; only loopback URLs are allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

import aiohttp

LOOPBACK = ("127.", "localhost", "::1", "[::1]")


async def run(
    url: str, requests: int, concurrency: int, seconds: float, body: bytes, headers: dict[str, str]
) -> dict[str, float]:
    host = urlsplit(url).hostname or ""
    if not host.startswith(LOOPBACK):
        raise SystemExit(f"refusing non-loopback target {host!r}")
    latencies: list[float] = []
    ok = errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, errors, issued
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if 200 <= resp.status < 300:
                            ok += 1
                        else:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": ok + errors,
        "ok": ok,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--body-bytes", type=int, default=300)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    body = b"x" * args.body_bytes
    result = asyncio.run(
        run(args.url, args.requests, args.concurrency, args.seconds, body, headers)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
