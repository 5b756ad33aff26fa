"""Load shedding: a slow database or blob store gets 503 + Retry-After, not a growing queue.

The slow database is real: the test holds a write transaction that locks the project's
row (PostgreSQL) or the single SQLite writer, so the server's own report transactions
wait on it. A slow blob store cannot be caused on demand, so it is injected at the
blob-store boundary (a store whose writes wait on an event).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.ingest.shedding import InFlight
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.core import projects, reports
from tests.conftest import RunningServer
from tests.reliability.conftest import Record
from tests.support.images import png_bytes
from tests.support.recordings import start_session

URL = "/api/v1/reports"
LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"ingest_max_in_flight": LIMIT}


def _post(client: httpx.AsyncClient, project: NewProject, n: int, origin: str | None = None) -> Any:
    return client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key, **({"Origin": origin} if origin else {})},
        data={"subject": f"report {n}"},
        files={"file": ("s.png", png_bytes(), "image/png")},
    )


async def _wait_in_flight(server: RunningServer, count: int) -> None:
    for _ in range(1000):
        counters: InFlight | None = getattr(server.server.config.app.state, "in_flight", None)
        if counters is not None and counters.current.get("reports", 0) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached {count} requests in flight")


async def _report_count(state: AppState) -> int:
    async with state.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar())


async def _shed_while_blocked(
    client: httpx.AsyncClient, server: RunningServer, project: NewProject
) -> list[asyncio.Task[httpx.Response]]:
    """Fill the limit with blocked requests; check the next ones are refused at once."""
    blocked = [asyncio.create_task(_post(client, project, i)) for i in range(LIMIT)]
    await _wait_in_flight(server, LIMIT)
    started = time.monotonic()
    extra = await asyncio.gather(
        *[_post(client, project, 100 + i, origin=f"https://app{i}.example") for i in range(5)]
    )
    assert time.monotonic() - started < 5, "refusals must not wait for the slow storage"
    for i, resp in enumerate(extra):
        assert resp.status_code == 503, resp.text
        assert resp.json()["code"] == "overloaded"
        assert int(resp.headers["retry-after"]) > 0
        # a browser's widget can read the refusal and its Retry-After, and back off
        assert resp.headers["access-control-allow-origin"] == f"https://app{i}.example"
        assert "Retry-After" in resp.headers["access-control-expose-headers"]
    assert not any(task.done() for task in blocked)
    return blocked


async def test_slow_database_sheds_load(
    client: httpx.AsyncClient,
    server: RunningServer,
    state: AppState,
    project: NewProject,
    record: Record,
) -> None:
    async with state.db.write() as conn:
        # Lock the project's row (and, on SQLite, the only writer) like a slow database.
        await conn.execute(
            projects.update()
            .where(projects.c.id == project.project.id)
            .values(last_ticketnr=projects.c.last_ticketnr)
        )
        blocked = await _shed_while_blocked(client, server, project)
    done = await asyncio.gather(*blocked)
    assert [r.status_code for r in done] == [201] * LIMIT
    assert await _report_count(state) == LIMIT  # the refused ones left nothing behind
    resp = await _post(client, project, 999)  # and the limit is free again
    assert resp.status_code == 201, resp.text
    record(
        "load",
        f"a slow database (the project's row / the SQLite writer locked by another "
        f"transaction) with FIELDREPORT_INGEST_MAX_IN_FLIGHT={LIMIT}: {LIMIT} reports wait, "
        "5 more arrive",
        "the 5 get 503 `overloaded` + Retry-After at once; the waiting ones are stored when "
        "the lock goes; nothing of the refused ones is kept",
    )


class _GatedBlobs:
    """Fault injection: a blob store whose writes wait until the gate opens."""

    def __init__(self, inner: Any, gate: asyncio.Event) -> None:
        self.inner = inner
        self.gate = gate

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        await self.gate.wait()
        return int(await self.inner.put_stream(key, chunks))

    async def write(self, key: str, source: Any, *, sha256: bool = False) -> Any:
        await self.gate.wait()
        return await self.inner.write(key, source, sha256=sha256)

    async def create(self, key: str, source: Any, **options: Any) -> Any:
        await self.gate.wait()  # a report's files are written by create (a fresh key)
        return await self.inner.create(key, source, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_slow_blob_store_sheds_load(
    client: httpx.AsyncClient,
    server: RunningServer,
    state: AppState,
    project: NewProject,
    record: Record,
) -> None:
    gate = asyncio.Event()
    real = state.blobs
    state.blobs = _GatedBlobs(real, gate)  # type: ignore[assignment]
    try:
        blocked = await _shed_while_blocked(client, server, project)
        gate.set()
        done = await asyncio.gather(*blocked)
    finally:
        state.blobs = real
    assert [r.status_code for r in done] == [201] * LIMIT
    assert await _report_count(state) == LIMIT
    assert len([k async for k in real.list("reports")]) == LIMIT
    record(
        "load",
        f"a stalled blob store (injected: writes wait on an event) with {LIMIT} reports "
        "in flight, 5 more arriving",
        "503 `overloaded` + Retry-After at once for the 5; the others complete afterwards",
    )


def test_in_flight_counts_per_route() -> None:
    counters = InFlight(2)
    assert counters.try_enter("reports") and counters.try_enter("reports")
    assert not counters.try_enter("reports")
    assert counters.try_enter("events")  # another route has its own budget
    counters.leave("reports")
    assert counters.try_enter("reports")
    assert counters.shed == {"reports": 1}


async def test_slow_database_sheds_full_stack_events(
    client: httpx.AsyncClient,
    server: RunningServer,
    state: AppState,
    project: NewProject,
    record: Record,
) -> None:
    recording = await start_session(state, project.project.id)
    auth = {"Authorization": f"Bearer {project.secret_key}"}

    def send(n: int) -> Any:
        event = {
            "uuid": recording,
            "type": "log",
            "payload": f'{{"n": {n}}}',
            "level": "info",
            "timestamp": 1622706694345 + n,
            "title": f"event {n}",
            "origin": "test",
        }
        return client.post("/api/fullstack/v1/send", json=event, headers=auth)

    async with state.db.write() as conn:
        if state.db.is_sqlite:  # the single writer is taken
            await conn.execute(sa.text("UPDATE projects SET name = name"))
        else:  # inserts referencing these rows wait (their foreign-key lock conflicts)
            await conn.execute(sa.text("SELECT 1 FROM projects FOR UPDATE"))
            await conn.execute(sa.text("SELECT 1 FROM sessions FOR UPDATE"))
        blocked = [asyncio.create_task(send(i)) for i in range(LIMIT)]
        for _ in range(1000):
            counters: InFlight | None = getattr(server.server.config.app.state, "in_flight", None)
            if counters is not None and counters.current.get("fullstack.send", 0) == LIMIT:
                break
            await asyncio.sleep(0.01)
        extra = await asyncio.gather(*[send(100 + i) for i in range(5)])
        for resp in extra:
            assert resp.status_code == 503, resp.text
            assert resp.json()["success"] == "false"  # the seed's error shape
            assert resp.json()["error"][0]["error_name"] == "ErrUnavailable"
            assert int(resp.headers["retry-after"]) > 0
    done = await asyncio.gather(*blocked)
    assert [r.status_code for r in done] == [200] * LIMIT, [r.text for r in done]
    record(
        "load",
        f"a slow database under the full-stack API: {LIMIT} events wait on locked rows, "
        "5 more arrive",
        "503 `ErrUnavailable` (seed 001's error shape) + Retry-After at once for the 5; the "
        "waiting ones are stored when the lock goes",
    )
