"""The server with its in-process worker, and the deliveries API (secret key)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from fieldreport.app import Service
from fieldreport.delivery.worker import worker_service
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, create_project
from tests.delivery.helpers import add_dest, submit
from tests.delivery.receivers import Receiver, serve_receiver


@pytest.fixture
def services() -> list[Service]:
    return [worker_service()]


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_served_reports_are_pushed_and_inspectable(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(fail_first=1, fail_status=500)) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0, 0.2, 5])
        started = time.monotonic()
        report_id = await submit(client, project)
        auth = {"Authorization": f"Bearer {project.secret_key}"}

        async def delivered() -> bool:
            resp = await client.get("/api/v1/deliveries?status=delivered", headers=auth)
            return bool(resp.json()["deliveries"])

        await wait_for(delivered)
        # Woken by the intake (not by polling): the first try happens at once.
        assert time.monotonic() - started < 5
        (item,) = (await client.get("/api/v1/deliveries", headers=auth)).json()["deliveries"]
        assert item["reportid"] == report_id and item["total_attempts"] == 2
        shown = (await client.get(f"/api/v1/deliveries/{item['id']}", headers=auth)).json()
        assert [a["outcome"] for a in shown["attempts_log"]] == ["retry", "delivered"]
        assert shown["attempts_log"][0]["status_code"] == 500
        assert shown["attempts_log"][0]["response_excerpt"] == "not now"

        again = await client.post(f"/api/v1/deliveries/{item['id']}/retry", headers=auth)
        assert again.status_code == 202 and again.json()["status"] == "pending"
        await wait_for(lambda: _count(rx, 3))
        await wait_for(delivered)
        dead = await client.post("/api/v1/deliveries/retry-dead?since=2h", headers=auth)
        assert dead.status_code == 202 and dead.json() == {"queued": 0}
        metrics = (await client.get("/metrics")).text
        assert 'fieldreport_deliveries{status="delivered"} 1.0' in metrics
        assert "fieldreport_delivery_oldest_due_seconds 0.0" in metrics


async def _count(rx: Receiver, n: int) -> bool:
    return len(rx.requests) >= n


async def test_deliveries_api_is_scoped_and_authenticated(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    await add_dest(state, project, "http://127.0.0.1:9/hook")
    await submit(client, project)
    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    mine = {"Authorization": f"Bearer {project.secret_key}"}
    theirs = {"Authorization": f"Bearer {other.secret_key}"}
    assert (await client.get("/api/v1/deliveries")).status_code == 401
    (item,) = (await client.get("/api/v1/deliveries", headers=mine)).json()["deliveries"]
    assert (await client.get("/api/v1/deliveries", headers=theirs)).json()["deliveries"] == []
    assert (await client.get(f"/api/v1/deliveries/{item['id']}", headers=theirs)).status_code == 404
    resp = await client.post(f"/api/v1/deliveries/{item['id']}/retry", headers=theirs)
    assert resp.status_code == 404
    bad = await client.get("/api/v1/deliveries?status=nope", headers=mine)
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
