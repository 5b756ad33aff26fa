"""The worker against real receivers on loopback: retries on an injected clock, fallback to
backups, timeouts, 410, redirects, Retry-After, dead + redelivery, concurrent workers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage import report_writer
from fieldreport.storage.deliveries import list_deliveries, requeue
from fieldreport.storage.destinations import chain
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import count_reports
from tests.delivery.helpers import FakeClock, add_dest, attempts, only_delivery, reload, submit
from tests.delivery.receivers import Receiver, SlowReceiver, down_url, serve_receiver


async def run(worker: Worker) -> int:
    return await worker.run_until_idle()


async def test_outbox_row_commits_with_the_report(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    await submit(client, project)  # no destination yet: nothing to deliver
    async with state.db.read() as conn:
        assert await list_deliveries(conn) == []
    await add_dest(state, project, "http://127.0.0.1:9/hook")
    report_id = await submit(client, project)
    delivery = await only_delivery(state)
    assert (delivery.report_id, delivery.status, delivery.attempts) == (report_id, "pending", 0)


async def test_outbox_failure_rolls_back_the_report(
    state: AppState, project: NewProject, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_dest(state, project, "http://127.0.0.1:9/hook")

    def broken(*args: object, **kwargs: object) -> list[int]:
        raise OSError("disk gone")

    monkeypatch.setattr(report_writer, "enqueue_reports", broken)
    resp = await client.post("/api/v1/reports", data={"key": project.public_key, "subject": "x"})
    assert resp.status_code == 503
    async with state.db.read() as conn:
        assert await count_reports(conn) == 0


async def test_fails_twice_then_succeeds_on_schedule(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(fail_first=2)) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0, 5, 300])
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock, rand=lambda: 0.5)
        assert await run(worker) == 1
        d = await only_delivery(state)
        assert d.status == "failed" and d.next_attempt_at == clock.now.replace() + _s(5)
        clock.advance(4.9)
        assert await run(worker) == 0  # not due yet
        clock.advance(0.1)
        assert await run(worker) == 1
        d = await reload(state, d.id)
        assert d.status == "failed" and d.next_attempt_at == clock.now + _s(300)
        clock.advance(300)
        assert await run(worker) == 1
        d = await reload(state, d.id)
        assert d.status == "delivered" and d.total_attempts == 3
        outcomes = [(a.outcome, a.status_code) for a in await attempts(state, d.id)]
        assert outcomes == [("retry", 503), ("retry", 503), ("delivered", 200)]
        assert len(rx.requests) == 3
        await worker.sender.close()


def _s(seconds: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=seconds)


async def test_down_primary_falls_back_to_backup(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as backup:
        await add_dest(state, project, down_url(), retry_schedule=[0, 5])
        await add_dest(state, project, backup.url, backup=True)
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock, rand=lambda: 0.5)
        await run(worker)
        clock.advance(5)
        await run(worker)
        d = await only_delivery(state)
        assert d.status == "delivered"
        tries = await attempts(state, d.id)
        assert [a.outcome for a in tries] == ["retry", "next", "delivered"]
        assert "cannot connect" in (tries[0].error or "")
        assert tries[2].destination == backup.url
        assert len(backup.requests) == 1
        await worker.sender.close()


async def test_hanging_receiver_times_out_then_dead_then_redelivered(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(hang=True)) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0], timeout=0.3)
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock)
        await run(worker)
        d = await only_delivery(state)
        assert d.status == "dead"
        (attempt,) = await attempts(state, d.id)
        assert attempt.error == "timed out after 0.3s" and attempt.outcome == "dead"
        rx.hang = False
        async with state.db.write() as conn:
            assert await requeue(conn, d.id, clock.now)
        await run(worker)
        assert (await reload(state, d.id)).status == "delivered"
        await worker.sender.close()


async def test_gone_disables_the_destination(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with (
        serve_receiver(Receiver(status=410)) as gone,
        serve_receiver(Receiver()) as backup,
    ):
        await add_dest(state, project, gone.url)
        await add_dest(state, project, backup.url, backup=True)
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock)
        await run(worker)
        assert (await only_delivery(state)).status == "delivered"
        async with state.db.read() as conn:
            primary, _ = await chain(conn, project.project.id)
        assert not primary.enabled and "410" in (primary.disabled_reason or "")
        # New reports skip the disabled destination altogether.
        await submit(client, project)
        clock.sync()
        await run(worker)
        assert len(gone.requests) == 1 and len(backup.requests) == 2
        await worker.sender.close()


async def test_redirects_are_not_followed(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with (
        serve_receiver(Receiver()) as target,
        serve_receiver(
            Receiver(fail_first=99, fail_status=302, fail_headers={"Location": "/elsewhere"})
        ) as redirecting,
    ):
        await add_dest(state, project, redirecting.url, retry_schedule=[0])
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock)
        await run(worker)
        d = await only_delivery(state)
        (attempt,) = await attempts(state, d.id)
        assert attempt.status_code == 302 and "redirect to /elsewhere not followed" in (
            attempt.error or ""
        )
        assert d.status == "dead" and target.requests == []
        await worker.sender.close()


async def test_retry_after_is_honoured(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(
        Receiver(fail_first=1, fail_status=429, fail_headers={"Retry-After": "120"})
    ) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0, 5])
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock, rand=lambda: 0.5)
        await run(worker)
        d = await only_delivery(state)
        assert d.next_attempt_at == clock.now + _s(120)
        clock.advance(119)
        assert await run(worker) == 0
        clock.advance(1)
        await run(worker)
        assert (await reload(state, d.id)).status == "delivered"
        await worker.sender.close()


async def test_two_workers_never_send_the_same_delivery(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url)
        ids = [await submit(client, project, subject=f"r{i}") for i in range(30)]
        a, b = Worker(state, name="a"), Worker(state, name="b")
        a.concurrency = b.concurrency = 4
        await asyncio.gather(run(a), run(b))
        got = [r.body for r in rx.requests]
        assert len(got) == 30
        assert sorted(i for i in ids if any(i.encode() in body for body in got)) == sorted(ids)
        async with state.db.read() as conn:
            assert {d.status for d in await list_deliveries(conn)} == {"delivered"}
        await a.sender.close()
        await b.sender.close()


async def test_per_destination_concurrency_limit(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(SlowReceiver()) as rx:
        await add_dest(state, project, rx.url)
        for i in range(12):
            await submit(client, project, subject=f"r{i}")
        worker = Worker(state)
        worker.per_destination = 3
        await run(worker)
        assert len(rx.requests) == 12 and rx.peak == 3
        await worker.sender.close()
