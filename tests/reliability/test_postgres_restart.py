"""PostgreSQL restarted under load: 503 + Retry-After meanwhile, nothing accepted lost,
the server recovers by itself (no restart of fieldreport).

The database is a private PostgreSQL instance (``tests/support/pg_private.py``): the
machine's shared cluster is never stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import free_port
from tests.reliability.conftest import Record, create_project, storage_args
from tests.reliability.load import LoadGenerator
from tests.support.pg_private import PrivatePostgres
from tests.support.server_proc import ServerProcess

OUTAGE_SECONDS = 2.0


async def _stored(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, subject FROM reports")
    finally:
        await conn.close()
    return {str(r["id"]): str(r["subject"]) for r in rows}


async def test_postgres_restart_during_load(
    tmp_path: Path, private_pg: PrivatePostgres, record: Record
) -> None:
    url = private_pg.create_database(f"restart_{uuid.uuid4().hex[:8]}")
    data = tmp_path / "data"
    storage = storage_args(data, url)
    project = create_project(storage)
    server = ServerProcess(data, free_port(), *storage[2:]).start()
    try:
        load = LoadGenerator(
            [server.url], project["public_key"], total=300, concurrency=6, deadline=90,
            run_id="pg-restart",
        )  # fmt: skip
        task = asyncio.create_task(load.run())
        await asyncio.wait_for(load.started.wait(), 30)
        await asyncio.sleep(0.5)
        # A crash-like stop (no checkpoint; recovery at start), a pause, then the restart.
        await asyncio.to_thread(private_pg.stop, "immediate")
        async with httpx.AsyncClient(timeout=10) as client:
            during = await client.get(server.url + "/healthz")
            down = await client.post(
                server.url + "/api/v1/reports",
                headers={"X-Fieldreport-Key": project["public_key"]},
                data={"subject": "during the outage"},
            )
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(private_pg.start)
        result = await asyncio.wait_for(task, 120)

        async with httpx.AsyncClient(timeout=10) as client:
            after = await client.get(server.url + "/healthz")
        stored = await _stored(url)
    finally:
        server.stop()

    assert during.status_code == 503
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "unavailable" and int(down.headers["retry-after"]) > 0
    assert result.statuses["503"] > 0, result.summary()  # the outage was seen under load
    assert result.retry_after_missing == 0
    assert result.server_errors == 0, result.summary()
    assert not result.given_up, result.summary()
    assert len(result.accepted) == load.total
    missing = set(result.accepted.values()) - set(stored)
    assert not missing, f"{len(missing)} accepted reports lost"
    assert after.status_code == 200  # recovered by itself
    subjects = list(stored.values())
    duplicates = len(subjects) - len(set(subjects))
    record(
        "fault",
        f"PostgreSQL stopped (immediate, like a crash) for {OUTAGE_SECONDS:.0f} s and restarted "
        f"while {load.concurrency} clients sent {load.total} reports to `serve`",
        "503 + Retry-After during the outage (healthz too), no 500, every 201 in the database "
        "afterwards, served again without restarting fieldreport",
        **result.summary(),
        duplicates_stored=duplicates,
    )
