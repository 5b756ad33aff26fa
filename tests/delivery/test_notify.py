"""PostgreSQL: a worker in another process is woken by NOTIFY, not by its (slow) poll."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from fieldreport.delivery.worker import Worker
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import add_dest, submit
from tests.delivery.receivers import Receiver, serve_receiver

pytestmark = pytest.mark.parametrize("backend", ["postgresql+s3"], indirect=True)


async def test_other_process_worker_is_notified(
    settings: Settings, state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    # The worker's own state, as in a separate `fieldreport worker` process.
    worker_settings = settings.model_copy(update={"delivery_poll_interval": 60.0})
    worker_state = await open_state(worker_settings)
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url)
        worker = Worker(worker_state)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.5)  # let it LISTEN and go idle (first poll done)
            started = time.monotonic()
            await submit(client, project)
            while not rx.requests:
                assert time.monotonic() - started < 10, "not woken"
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 5  # far below the 60 s poll
        finally:
            worker.request_stop(1)
            await task
            await worker_state.close()
