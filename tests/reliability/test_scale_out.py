"""Scale-out on one machine: 2 ``serve --no-worker`` + 2 ``worker`` processes on PostgreSQL
(a private instance) and SeaweedFS S3, under load from a bounded generator.

The receiver is in the test: it records every push it gets (the report id of the
multipart body), counts duplicates, and notes when two pushes of the same report overlap
in time, i.e. one delivery being sent by two workers at once, which must never happen.
The attempts table is checked for the same thing from the workers' side.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("fieldreport.delivery.worker", reason="needs the delivery worker")

from tests.conftest import free_port
from tests.reliability.conftest import Record, cli
from tests.reliability.load import LoadGenerator, LoadResult
from tests.support.pg_private import PrivatePostgres
from tests.support.proc import fieldreport_cmd, subprocess_env
from tests.support.seaweed import S3Server
from tests.support.server_proc import ServerProcess

REPORTID = re.compile(rb'name="reportid"\r\n\r\n([0-9a-f-]{36})')
DELIVERY_DEADLINE = 120.0


@dataclass
class CountingReceiver:
    """Records each push: which report, when it started and ended; overlaps per report."""

    delay: float = 0.02
    received: collections.Counter[str] = field(default_factory=collections.Counter)
    in_flight: collections.Counter[str] = field(default_factory=collections.Counter)
    overlaps: list[str] = field(default_factory=list)
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        match = REPORTID.search(body)
        if match is None:
            return web.Response(status=400, text="no reportid")
        report = match.group(1).decode()
        if self.in_flight[report]:
            self.overlaps.append(report)
        self.in_flight[report] += 1
        try:
            await asyncio.sleep(self.delay)
            self.received[report] += 1
        finally:
            self.in_flight[report] -= 1
        return web.Response(text="OK")


@asynccontextmanager
async def running_receiver(rx: CountingReceiver, port: int) -> AsyncIterator[str]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/", rx.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


class WorkerProcess:
    def __init__(self, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WorkerProcess:
        """Start ``fieldreport worker`` and wait until it says it is delivering."""
        seen = self.log.read_text().count(": delivering") if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                fieldreport_cmd("worker"), env=subprocess_env(PYTHONUNBUFFERED="1", **self.env),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.log.read_text().count(": delivering") == seen:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@dataclass
class Cluster:
    servers: list[ServerProcess]
    workers: list[WorkerProcess]
    env: dict[str, str]
    database_url: str
    project: dict[str, Any]
    receiver_port: int

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


@pytest.fixture
def cluster(tmp_path: Path, private_pg: PrivatePostgres, s3_server: S3Server) -> Iterator[Cluster]:
    url = private_pg.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    env = {
        "FIELDREPORT_DATABASE_URL": url,
        "FIELDREPORT_BLOB_URL": f"s3://{s3_server.bucket}/scale-{uuid.uuid4().hex[:8]}",
        "FIELDREPORT_S3_ENDPOINT": s3_server.endpoint,
        "FIELDREPORT_S3_REGION": s3_server.region,
        "FIELDREPORT_S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "FIELDREPORT_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS": "true",
        "FIELDREPORT_DELIVERY_LEASE": "3s",
        "FIELDREPORT_DELIVERY_POLL_INTERVAL": "0.2s",
        "FIELDREPORT_DELIVERY_CONCURRENCY": "8",
        "FIELDREPORT_DATA_DIR": str(tmp_path / "data"),
    }
    project = _cli_json(env, "project", "create", "acme", "--json")
    receiver_port = free_port()
    cli(
        "destination", "add", "acme", f"http://127.0.0.1:{receiver_port}/",
        "--retry-schedule", "0s,0.5s,0.5s,1s,1s,1s,1s,1s,1s,1s", "--timeout", "5s", env=env,
    )  # fmt: skip
    servers = [
        ServerProcess(tmp_path / f"serve{i}", free_port(), "--no-worker", **env) for i in range(2)
    ]
    workers = [WorkerProcess(tmp_path / f"worker{i}.log", env) for i in range(2)]
    try:
        for server in servers:
            server.start()
        for worker in workers:
            worker.start()
        yield Cluster(servers, workers, env, url, project, receiver_port)
    finally:
        for worker in workers:
            worker.stop()
        for server in servers:
            server.stop()


def _cli_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cli(*args, env=env))
    return out


async def _wait_delivered(rx: CountingReceiver, ids: set[str]) -> float:
    started = time.monotonic()
    while not ids <= set(rx.received):
        assert time.monotonic() - started < DELIVERY_DEADLINE, (
            f"{len(ids - set(rx.received))} of {len(ids)} accepted reports never arrived"
        )
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _overlapping_attempts(database_url: str) -> int:
    """Attempts of one delivery whose send intervals overlap (two workers at once)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT delivery_id, worker, started_at, coalesce(duration_ms, 0) AS ms "
            "FROM delivery_attempts ORDER BY delivery_id, started_at"
        )
    finally:
        await conn.close()
    overlaps = 0
    last: dict[int, tuple[Any, str]] = {}
    for row in rows:
        end = row["started_at"] + timedelta(milliseconds=row["ms"])
        previous = last.get(row["delivery_id"])
        if (
            previous is not None
            and row["started_at"] < previous[0]
            and row["worker"] != previous[1]
        ):
            overlaps += 1
        if previous is None or end > previous[0]:
            last[row["delivery_id"]] = (end, row["worker"])
    return overlaps


async def _scrape(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(url + "/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


async def _settled_metrics(url: str, delivered: int) -> dict[str, float]:
    """/metrics of a `serve --no-worker` once the workers have recorded every result."""
    for _ in range(100):
        metrics = await _scrape(url)
        if (
            metrics.get("fieldreport_deliveries{status=delivered}") == delivered
            and metrics.get("fieldreport_delivery_leases") == 0
        ):
            return metrics
        await asyncio.sleep(0.1)
    raise AssertionError(f"the delivery gauges never settled: {metrics}")


def _summary(rx: CountingReceiver, load: LoadResult) -> dict[str, Any]:
    accepted = set(load.accepted.values())
    duplicates = sum(n - 1 for r, n in rx.received.items() if r in accepted)
    return {**load.summary(), "pushes_received": rx.requests, "duplicates": duplicates}


async def test_two_servers_two_workers_deliver_everything(cluster: Cluster, record: Record) -> None:
    rx = CountingReceiver()
    async with running_receiver(rx, cluster.receiver_port):
        load = LoadGenerator(
            cluster.urls, cluster.project["public_key"], total=400, concurrency=8,
            deadline=120, run_id="scale",
        )  # fmt: skip
        result = await load.run()
        accepted = set(result.accepted.values())
        waited = await _wait_delivered(rx, accepted)
    assert result.server_errors == 0 and not result.given_up, result.summary()
    assert len(accepted) == load.total
    assert rx.overlaps == []
    assert await _overlapping_attempts(cluster.database_url) == 0
    summary = _summary(rx, result)
    assert summary["duplicates"] == 0  # no fault, no redelivery
    # The delivery gauges on a server that runs no worker itself (read from the database).
    metrics = await _settled_metrics(cluster.urls[0], len(accepted))
    assert metrics["fieldreport_delivery_attempts{outcome=delivered}"] == len(accepted)
    assert metrics["fieldreport_delivery_attempts{outcome=in_flight}"] == 0
    assert metrics["fieldreport_delivery_oldest_due_seconds"] == 0
    assert metrics["fieldreport_deliveries{status=pending}"] == 0
    record(
        "load",
        f"2 `serve --no-worker` + 2 `worker` processes on PostgreSQL and SeaweedFS S3; "
        f"{load.concurrency} clients sent {load.total} reports (with a screenshot) to both "
        "servers; one HTTP multipart destination",
        "every accepted report reached the receiver exactly once; no delivery sent by two "
        "workers at once (receiver and attempts table); /metrics of a worker-less server "
        "shows them delivered, no leases, nothing due",
        **summary,
        reports_per_second=round(len(accepted) / result.seconds, 1),
        last_delivery_after_load_s=round(waited, 2),
    )


async def test_kills_and_receiver_outage_during_load(cluster: Cluster, record: Record) -> None:
    rx = CountingReceiver()
    rx_ctx = running_receiver(rx, cluster.receiver_port)
    await rx_ctx.__aenter__()
    load = LoadGenerator(
        cluster.urls, cluster.project["public_key"], total=400, concurrency=8, deadline=150,
        run_id="faults",
    )  # fmt: skip
    task = asyncio.create_task(load.run())
    await asyncio.wait_for(load.started.wait(), 30)

    async def until_received(n: int) -> None:
        for _ in range(600):
            if rx.requests >= n:
                return
            await asyncio.sleep(0.05)

    await until_received(40)
    cluster.servers[0].kill()  # clients fail over to the other server
    cluster.workers[0].kill()  # its leases run out; the other worker takes over
    await until_received(rx.requests + 40)
    await rx_ctx.__aexit__(None, None, None)  # the receiver goes down ...
    await asyncio.sleep(2.0)
    await asyncio.to_thread(cluster.servers[0].start)
    await asyncio.to_thread(cluster.workers[0].start)
    rx_ctx = running_receiver(rx, cluster.receiver_port)  # ... and comes back
    await rx_ctx.__aenter__()
    try:
        result = await asyncio.wait_for(task, 180)
        accepted = set(result.accepted.values())
        waited = await _wait_delivered(rx, accepted)
    finally:
        await rx_ctx.__aexit__(None, None, None)
    assert result.server_errors == 0 and not result.given_up, result.summary()
    assert len(accepted) == load.total
    assert rx.overlaps == []
    assert await _overlapping_attempts(cluster.database_url) == 0
    summary = _summary(rx, result)
    # At-least-once: only sends in flight in the killed worker may be repeated.
    assert summary["duplicates"] <= 3 * 8, summary
    record(
        "fault",
        "SIGKILL of one `serve` and one `worker` during load, then the receiver down for 2 s "
        f"and back; {load.total} reports from {load.concurrency} clients to 2 servers, "
        "2 workers, PostgreSQL + S3",
        "every accepted report delivered; duplicates only from the killed worker's sends in "
        "flight; never two workers on one delivery; the killed processes restarted cleanly",
        **summary,
        last_delivery_after_load_s=round(waited, 2),
    )


async def test_postgres_restart_with_servers_and_workers(
    cluster: Cluster, private_pg: PrivatePostgres, record: Record
) -> None:
    rx = CountingReceiver()
    async with running_receiver(rx, cluster.receiver_port):
        load = LoadGenerator(
            cluster.urls, cluster.project["public_key"], total=300, concurrency=8, deadline=150,
            run_id="pg-restart-cluster",
        )  # fmt: skip
        task = asyncio.create_task(load.run())
        await asyncio.wait_for(load.started.wait(), 30)
        for _ in range(600):
            if rx.requests >= 30:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(private_pg.stop, "immediate")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(private_pg.start)
        result = await asyncio.wait_for(task, 180)
        accepted = set(result.accepted.values())
        waited = await _wait_delivered(rx, accepted)
    assert result.statuses["503"] > 0, result.summary()
    assert result.retry_after_missing == 0
    assert result.server_errors == 0 and not result.given_up, result.summary()
    assert rx.overlaps == []
    assert await _overlapping_attempts(cluster.database_url) == 0
    for process in [*cluster.servers, *cluster.workers]:
        assert process.proc is not None and process.proc.poll() is None  # nobody restarted
    summary = _summary(rx, result)
    record(
        "fault",
        "PostgreSQL stopped (immediate) for 2 s and restarted under load with 2 `serve` and "
        f"2 `worker` processes on it; {load.total} reports from {load.concurrency} clients",
        "503 + Retry-After during the outage, no 500; servers and workers reconnect by "
        "themselves; every accepted report delivered, never by two workers at once",
        **summary,
        last_delivery_after_load_s=round(waited, 2),
    )
