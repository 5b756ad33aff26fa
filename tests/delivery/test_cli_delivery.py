"""``fieldreport delivery list|show|retry`` as real subprocesses."""

from __future__ import annotations

import httpx
import pytest

from fieldreport.delivery.worker import Worker
from fieldreport.settings import Settings
from fieldreport.state import AppState
from fieldreport.storage.deliveries import list_deliveries
from fieldreport.storage.projects import NewProject
from tests.delivery.cliutil import cli
from tests.delivery.helpers import add_dest, submit
from tests.delivery.receivers import Receiver, serve_receiver

pytestmark = pytest.mark.parametrize("backend", ["sqlite+local"], indirect=True)


async def test_delivery_list_show_retry(
    settings: Settings, state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(status=500)) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0])
        await submit(client, project)
        await submit(client, project)
        worker = Worker(state)
        await worker.run_until_idle()
        listed = (await cli(settings, "delivery", "list", "--status", "dead", "--json")).json()
        assert len(listed) == 2 and {d["status"] for d in listed} == {"dead"}
        first = listed[-1]["id"]
        shown = await cli(settings, "delivery", "show", str(first))
        assert "dead" in shown.out and "status 500" in shown.out and "HTTP 500" in shown.out
        detail = (await cli(settings, "delivery", "show", str(first), "--json")).json()
        assert [a["outcome"] for a in detail["attempts_log"]] == ["dead"]
        one = await cli(settings, "delivery", "retry", str(first))
        assert one.code == 0 and "queued again" in one.out
        assert (await cli(settings, "delivery", "list", "--status", "pending", "--json")).json()
        everything = await cli(settings, "delivery", "retry", "--dead", "--since", "2h")
        assert everything.code == 0 and "1 of 1 dead deliveries queued again" in everything.out
        rx.status = 200
        await worker.run_until_idle()
        async with state.db.read() as conn:
            assert {d.status for d in await list_deliveries(conn)} == {"delivered"}
        usage = await cli(settings, "delivery", "retry")
        assert usage.code == 2
        await worker.sender.close()
