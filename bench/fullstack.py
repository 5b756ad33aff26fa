"""Full-stack API throughput: durably accepted events/s vs the bare-framework ceiling.

    .venv/bin/python -m bench.fullstack [--seconds 5] [--rounds 3] [--batch 100] [--database-url U]

One fieldreport server (uvicorn + uvloop + httptools, 1 worker, SQLite WAL with
synchronous=FULL unless --database-url) serves, in the same process and the same run:
  bare        POST /bench/bare: only reads the body (the ceiling)
  send        POST /api/fullstack/v1/send: one event per request, answered after its commit
  send-batch  POST /api/fullstack/v1/send-batch: --batch events per request
The load comes from wrk (64 connections; Debian package `wrk`). Afterwards the
rows are counted: every event answered 2xx must be in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

import sqlalchemy as sa

from bench import wrk
from bench.util import free_port, wait_http
from fieldreport.settings import Settings
from fieldreport.state import open_state
from fieldreport.storage.projects import create_project
from fieldreport.storage.schema.backend_events import backend_events
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.sessions import sessions


def event(recording: str) -> dict[str, object]:
    return {
        "uuid": recording,
        "type": "log",
        "payload": '{"a":1,"b":"a sample log text","user":42,"path":"/checkout"}',
        "level": "info",
        "timestamp": 1622706694345,
        "metadata": '{"anything_useful":"can be added here"}',
        "title": "sample log today",
        "origin": "Wonderful Linux Server #2",
    }


async def prepare(settings: Settings) -> tuple[str, str]:
    state = await open_state(settings)
    try:
        async with state.db.write() as conn:
            project = await create_project(conn, f"bench-{uuid.uuid4().hex[:6]}")
            recording = str(uuid.uuid4())
            await conn.execute(
                sessions.insert().values(
                    id=recording,
                    project_id=project.project.id,
                    platform="web",
                    user_uuid="bench",
                    started_at=utcnow(),
                )
            )
        return project.secret_key, recording
    finally:
        await state.close()


async def count_rows(settings: Settings, recording: str) -> int:
    state = await open_state(settings, migrate=False)
    try:
        async with state.db.read() as conn:
            query = sa.select(sa.func.count()).where(backend_events.c.recording == recording)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await state.close()


def load(url: str, seconds: float, body: bytes, headers: dict[str, str]) -> dict[str, float]:
    return wrk.run(url, seconds=seconds, body=body, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("this benchmark needs wrk (apt-get install wrk): it sends JSON bodies")

    with tempfile.TemporaryDirectory() as tmp:
        env_settings = {"FIELDREPORT_DATA_DIR": str(Path(tmp) / "data")}
        if args.database_url:
            env_settings["FIELDREPORT_DATABASE_URL"] = args.database_url
        settings = Settings(
            data_dir=Path(env_settings["FIELDREPORT_DATA_DIR"]), database_url=args.database_url
        )
        secret, recording = asyncio.run(prepare(settings))
        port = free_port()
        env = {**os.environ, **env_settings, "FIELDREPORT_LOG_LEVEL": "warning"}
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "bench.apps.fullstack:app"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                *("--loop", "uvloop", "--http", "httptools", "--log-level", "warning"),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        one = json.dumps(event(recording)).encode()
        many = json.dumps([event(recording)] * args.batch).encode()
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        scenarios = [
            ("bare", "/bench/bare", one, 1),
            ("send", "/api/fullstack/v1/send", one, 1),
            (f"send-batch x{args.batch}", "/api/fullstack/v1/send-batch", many, args.batch),
        ]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in scenarios}
        accepted = 0
        try:
            wait_http(f"{base}/healthz")
            for _name, path, body, items in scenarios:  # warm-up
                warm = load(base + path, 1, body, headers)
                if path != "/bench/bare":
                    accepted += int(warm["requests"] - warm["errors"]) * items
            # Rounds interleave the endpoints, so a change in the machine's load hits all
            # of them alike; the ratios are taken within each round.
            for _ in range(args.rounds):
                for name, path, body, items in scenarios:
                    result = load(base + path, args.seconds, body, headers)
                    runs[name].append({**result, "events_s": result["rps"] * items})
                    if path != "/bench/bare":
                        accepted += int(result["requests"] - result["errors"]) * items
                    time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(30)
        rows = asyncio.run(count_rows(settings, recording))

    db = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
    print(
        f"full-stack events, 1 uvicorn worker, {db}, {len(one)}-byte event, 64 connections, "
        f"{args.rounds} rounds of {args.seconds:g}s (medians)"
    )
    print(
        f"{'endpoint':<16} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    for name, rs in runs.items():
        print(
            f"{name:<16} {median(r['rps'] for r in rs):>9.0f} "
            f"{median(r['events_s'] for r in rs):>10.0f} {median(r['p50_ms'] for r in rs):>8.2f} "
            f"{median(r['p99_ms'] for r in rs):>8.2f} {sum(r['errors'] for r in rs):>7.0f}"
        )
    bare = runs["bare"]
    for name in list(runs)[1:]:
        ratios = [r["events_s"] / b["rps"] for r, b in zip(runs[name], bare, strict=True)]
        listed = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"ratio {name} events/s / bare req/s: {median(ratios):.2f}  (rounds: {listed})")
    status = "OK" if rows >= accepted else "LOST EVENTS"
    print(f"durability: {accepted} events answered 2xx, {rows} rows in the database: {status}")
    if rows < accepted:
        sys.exit(1)


if __name__ == "__main__":
    main()
