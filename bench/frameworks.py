"""Which ASGI framework for the ingest paths? Starlette vs FastAPI, same uvicorn, same run.

    .venv/bin/python -m bench.frameworks [--seconds 8] [--workers 1]

Both serve an endpoint that only reads the body; the load comes from a second process
(wrk when installed, else bench.loadgen). Prints requests/s for each and the
ratio FastAPI / Starlette.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench import wrk
from bench.util import free_port, wait_http


def serve(app: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        stdout=subprocess.DEVNULL,
    )


def load(url: str, seconds: float, body_bytes: int) -> dict[str, float]:
    if wrk.available():
        return wrk.run(url, seconds=seconds, body=b"x" * body_bytes)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
            "--seconds",
            str(seconds),
            "--requests",
            "1000000",
            "--concurrency",
            "64",
            "--body-bytes",
            str(body_bytes),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--body-bytes", type=int, default=300)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for name, app in (
        ("starlette", "bench.apps.bare:starlette_app"),
        ("fastapi", "bench.apps.bare:fastapi_app"),
    ):
        port = free_port()
        proc = serve(app, port, args.workers)
        try:
            wait_http(f"http://127.0.0.1:{port}/ingest", method="POST")
            load(f"http://127.0.0.1:{port}/ingest", 1, args.body_bytes)  # warm-up
            results[name] = load(f"http://127.0.0.1:{port}/ingest", args.seconds, args.body_bytes)
        finally:
            proc.terminate()
            proc.wait(10)
        time.sleep(0.5)
    s, f = results["starlette"]["rps"], results["fastapi"]["rps"]
    print(f"{'framework':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    print(
        f"ratio fastapi/starlette: {f / s:.2f}  (workers={args.workers}, body={args.body_bytes} B)"
    )


if __name__ == "__main__":
    main()
