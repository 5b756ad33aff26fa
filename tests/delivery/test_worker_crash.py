"""A worker SIGKILLed in the middle of deliveries: its leases run out, another worker takes
over, every report is delivered, and duplicates are at most the sends that were in flight."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import time

import httpx
import psutil
import sqlalchemy as sa
from aiohttp import web

from fieldreport.delivery.worker import Worker
from fieldreport.settings import Settings
from fieldreport.state import AppState
from fieldreport.storage.deliveries import attempts_of, list_deliveries
from fieldreport.storage.projects import NewProject
from tests.delivery.cliutil import settings_env
from tests.delivery.helpers import add_dest, submit
from tests.delivery.receivers import Receiver, serve_receiver
from tests.support.proc import fieldreport_cmd

REPORTS = 40
CONCURRENCY = 6
REPORTID = re.compile(rb'name="reportid"\r\n\r\n([0-9a-f-]{36})')


class SlowCounting(Receiver):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.15)
        return await super().handle(request)


def _database_client_ports(pid: int, state: AppState) -> set[int]:
    """The local ports of ``pid``'s connections to PostgreSQL (none on SQLite)."""
    if state.db.is_sqlite:
        return set()
    server_port = sa.make_url(state.db.url).port or 5432
    return {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == server_port
    }


async def _until_backends_gone(state: AppState, ports: set[int]) -> None:
    """Wait until PostgreSQL has no backend left for the killed worker's connections: a
    COMMIT the worker sent just before it died may still be applied until then (its backend
    reads what the socket holds before it sees the end), so leases read earlier could change
    under the test."""
    if not ports:
        return
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(:ports)")
    deadline = time.monotonic() + 30
    while True:
        async with state.db.read() as conn:
            left = (await conn.execute(query, {"ports": sorted(ports)})).scalar_one()
        if not left:
            return
        assert time.monotonic() < deadline, f"{left} backends of the killed worker remain"
        await asyncio.sleep(0.05)


async def test_sigkilled_worker_is_taken_over(
    settings: Settings, state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(SlowCounting()) as rx:
        await add_dest(state, project, rx.url)
        ids = [await submit(client, project, subject=f"r{i}") for i in range(REPORTS)]
        proc = await asyncio.create_subprocess_exec(
            *fieldreport_cmd("worker"),
            env=settings_env(
                settings,
                FIELDREPORT_DELIVERY_LEASE="2s",
                FIELDREPORT_DELIVERY_CONCURRENCY=str(CONCURRENCY),
                FIELDREPORT_DELIVERY_POLL_INTERVAL="0.1",
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        try:
            while len(rx.requests) < 12:
                assert time.monotonic() < deadline, "the worker did not start delivering"
                assert proc.returncode is None
                await asyncio.sleep(0.01)
        except BaseException:  # do not leave the worker running (it did, for 35 minutes)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        ports = _database_client_ports(proc.pid, state)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await _until_backends_gone(state, ports)
        async with state.db.read() as conn:
            leased = [d for d in await list_deliveries(conn, limit=1000) if d.lease_owner]
        # Claimed by the dead worker and not recorded: sends in flight, claims waiting for a
        # send slot (the worker claims up to twice its concurrency), and sends that had
        # finished but whose batch of results was not written yet.
        assert 0 < len(leased) <= 3 * CONCURRENCY

        survivor = Worker(state, name="survivor")
        deadline = time.monotonic() + 30
        while True:
            await survivor.run_until_idle()
            async with state.db.read() as conn:
                statuses = collections.Counter(
                    d.status for d in await list_deliveries(conn, limit=1000)
                )
            if statuses == {"delivered": REPORTS}:
                break
            assert time.monotonic() < deadline, statuses
            await asyncio.sleep(0.2)
        await survivor.sender.close()

        seen = collections.Counter(
            m.group(1).decode() for r in rx.requests if (m := REPORTID.search(r.body))
        )
        assert set(seen) == set(ids)  # every report delivered
        duplicates = sum(n - 1 for n in seen.values())
        assert duplicates <= len(leased)  # at most the sends in flight (not yet recorded)
        async with state.db.read() as conn:
            abandoned = 0
            for d in leased:
                outcomes = [a.outcome for a in await attempts_of(conn, d.id)]
                assert outcomes[-1] == "delivered" and "abandoned" in outcomes
                abandoned += outcomes.count("abandoned")
        assert abandoned == len(leased)
