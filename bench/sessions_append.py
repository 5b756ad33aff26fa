"""Session append throughput and memory, measured side by side in one run.

    .venv/bin/python -m bench.sessions_append [--requests 4000] [--concurrency 16]
        [--gigabytes 1] [--rss-batch-kib 1000]          (from the repository root)

1. Throughput of 20 KB batches (batches/s, MB/s) into ``fieldreport serve`` (SQLite + local
   blobs in a temporary directory; every 200 is a fsync'd blob plus a committed row) on the
   web path (JSON array of rrweb-like events, validated) and the mobile path (opaque bytes),
   against a bare Starlette endpoint that only reads the body (``bench.apps.bare``), on the
   same stack (uvicorn, uvloop, httptools, one worker), with the same client, in the same run.
2. Peak RSS (VmHWM) of the fieldreport server while ``--gigabytes`` of batches go in.

Everything runs on loopback, in a temporary directory that is deleted afterwards; every loop
is bounded by a request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.frameworks import serve
from bench.servers import NO_SESSION_RATE_LIMITS
from bench.util import free_port

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FIELDREPORT_")}
    base["PYTHONPATH"] = os.pathsep.join([str(SRC), base.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    base.update(extra)
    return base


def events_batch(target: int) -> bytes:
    """A JSON array of rrweb-like incremental-snapshot events, at most ``target`` bytes."""
    parts: list[bytes] = []
    size = 2
    i = 0
    while True:
        event = {
            "type": 3,
            "timestamp": 1_700_000_000_000 + i * 16,
            "data": {"source": 1, "positions": [{"x": i % 1280, "y": i % 720, "id": 42}]},
        }
        raw = json.dumps(event, separators=(",", ":")).encode()
        if parts and size + len(raw) + 1 > target:
            return b"[" + b",".join(parts) + b"]"
        parts.append(raw)
        size += len(raw) + 1
        i += 1


def rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_now_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def hammer(
    url: str, body: bytes, headers: dict[str, str], requests: int, concurrency: int
) -> float:
    """Send ``requests`` POSTs with ``concurrency`` in flight; return the seconds it took."""
    remaining = requests
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and not failures:
                remaining -= 1
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures.append(f"{resp.status} {await resp.text()}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{url}: {failures[0]}")
    return elapsed


async def start_session(base: str, platform: str, project: dict[str, str]) -> str:
    body = {"projectKey": project["public_key"], "trackerVersion": "bench/1"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/v1/{platform}/start", json=body) as resp,
    ):
        resp.raise_for_status()
        return str((await resp.json())["token"])


def spawn(args: list[str], extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env(**extra_env), stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fieldreport-bench-"))
    data_dir = workdir / "data"
    settings_env = {
        "FIELDREPORT_DATA_DIR": str(data_dir),
        "FIELDREPORT_LOG_LEVEL": "warning",
        **NO_SESSION_RATE_LIMITS,
    }
    created = subprocess.run(
        [sys.executable, "-m", "fieldreport", "project", "create", "bench", "--json"],
        env=env(**settings_env),
        capture_output=True,
        check=True,
    )
    project = json.loads(created.stdout)
    fr_port, bare_port = free_port(), free_port()
    fieldreport = spawn(
        [sys.executable, "-m", "fieldreport", "serve", "--port", str(fr_port)], settings_env
    )
    bare = serve("bench.apps.bare:starlette_app", bare_port, 1)
    try:
        fr = f"http://127.0.0.1:{fr_port}"
        bare_url = f"http://127.0.0.1:{bare_port}"
        await wait_up(f"{fr}/healthz")
        await wait_up(f"{bare_url}/")  # 404/405 when up
        baseline_rss = rss_now_kib(fieldreport.pid)

        batch = events_batch(20_000)
        n, c = args.requests, args.concurrency
        web_token = await start_session(fr, "web", project)
        ios_token = await start_session(fr, "ios", project)
        json_headers = {"Content-Type": "application/json"}
        octet = {"Content-Type": "application/octet-stream"}
        # Warm-up (connections, caches), then the measured runs, alternated.
        await hammer(f"{bare_url}/ingest", batch, json_headers, 200, c)
        await hammer(
            f"{fr}/v1/web/append",
            batch,
            {**json_headers, "Authorization": f"Bearer {web_token}"},
            200,
            c,
        )
        results: dict[str, float] = {}
        for name, url, headers in (
            ("bare Starlette (reads body)", f"{bare_url}/ingest", json_headers),
            (
                "fieldreport /v1/web/append",
                f"{fr}/v1/web/append",
                {**json_headers, "Authorization": f"Bearer {web_token}"},
            ),
            (
                "fieldreport /v1/ios/append",
                f"{fr}/v1/ios/append",
                {**octet, "Authorization": f"Bearer {ios_token}"},
            ),
        ):
            results[name] = n / await hammer(url, batch, headers, n, c)

        ceiling = results["bare Starlette (reads body)"]
        print(f"\nappend throughput: {n} batches of {len(batch)} bytes, {c} concurrent, 1 worker")
        print(f"{'target':<32}{'batches/s':>12}{'MB/s':>10}{'of bare':>10}")
        for name, rate in results.items():
            mbs = rate * len(batch) / 1e6
            print(f"{name:<32}{rate:>12.0f}{mbs:>10.1f}{rate / ceiling:>10.1%}")

        size = args.rss_batch_kib * 1024
        big = events_batch(size)
        count = max(1, int(args.gigabytes * 1024**3 / len(big)))
        token = await start_session(fr, "web", project)
        headers = {**json_headers, "Authorization": f"Bearer {token}"}
        elapsed = await hammer(f"{fr}/v1/web/append", big, headers, count, min(c, 8))
        total = count * len(big)
        print(
            f"\nmemory: {total / 1024**3:.2f} GiB in {count} batches of {len(big)} bytes "
            f"({total / elapsed / 1e6:.0f} MB/s)"
        )
        print(
            f"server RSS at start {baseline_rss / 1024:.0f} MiB, "
            f"peak (VmHWM) {rss_peak_kib(fieldreport.pid) / 1024:.0f} MiB, "
            f"now {rss_now_kib(fieldreport.pid) / 1024:.0f} MiB"
        )
    finally:
        stop(fieldreport)
        stop(bare)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="batches per target")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="volume for the RSS run")
    parser.add_argument("--rss-batch-kib", type=int, default=1000, help="batch size, RSS run")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
