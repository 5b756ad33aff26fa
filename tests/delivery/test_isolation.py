"""One hanging receiver does not hold up delivery to the others."""

from __future__ import annotations

import asyncio
import time

import httpx

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.deliveries import list_deliveries
from fieldreport.storage.projects import NewProject, create_project
from tests.delivery.helpers import add_dest, submit
from tests.delivery.receivers import Receiver, serve_receiver


async def test_hanging_destination_does_not_block_others(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    async with (
        serve_receiver(Receiver(hang=True)) as stuck,
        serve_receiver(Receiver()) as healthy,
    ):
        await add_dest(state, project, stuck.url, retry_schedule=[0, 60], timeout=3)
        await add_dest(state, other, healthy.url)
        for i in range(6):
            await submit(client, project, subject=f"stuck {i}")
        for i in range(6):
            await submit(client, other, subject=f"healthy {i}")
        worker = Worker(state)
        worker.concurrency = 4
        worker.per_destination = 2
        started = time.monotonic()
        task = asyncio.create_task(worker.run())
        try:
            while len(healthy.requests) < 6:
                assert time.monotonic() - started < 2.5, "held up by the hanging receiver"
                await asyncio.sleep(0.01)
            assert len(stuck.requests) == 2  # its limit, no more
        finally:
            worker.request_stop(0.1)
            await task
        async with state.db.read() as conn:
            found = await list_deliveries(conn, project_id=other.project.id)
        assert {d.status for d in found} == {"delivered"}
