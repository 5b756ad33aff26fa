"""Attempts whose worker died (its lease ran out) count as attempts, and a delivery that
keeps killing its workers is given up on at that destination instead of looping forever."""

from __future__ import annotations

from typing import Any

import httpx

from fieldreport.delivery.policy import MAX_ABANDONED_IN_A_ROW
from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.outbox import claim_due_sync
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import FakeClock, add_dest, attempts, only_delivery, submit
from tests.delivery.receivers import Receiver, serve_receiver

LEASE = 5.0


async def one_report(
    state: AppState, project: NewProject, client: httpx.AsyncClient, url: str, **dest: Any
) -> FakeClock:
    """A destination, a report for it, and a clock at the report's time."""
    await add_dest(state, project, url, **dest)
    await submit(client, project)
    clock = FakeClock()
    clock.sync()
    return clock


async def survivor_runs(state: AppState, clock: FakeClock, times: int = 1) -> None:
    worker = Worker(state, name="survivor", now=clock, rand=lambda: 0.5)
    for _ in range(times):
        await worker.run_until_idle()
    await worker.sender.close()


async def die_while_sending(state: AppState, clock: FakeClock, owner: str) -> None:
    """A worker claims the delivery and dies: nothing is recorded, the lease runs out."""
    async with state.db.write() as conn:
        claims = await conn.run_sync(
            lambda c: claim_due_sync(c, owner=owner, now=clock(), lease=LEASE, limit=10)
        )
    assert len(claims) == 1
    clock.advance(LEASE + 1)


async def test_an_abandoned_attempt_counts(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        clock = await one_report(state, project, client, rx.url)
        await die_while_sending(state, clock, "dead-1")
        await survivor_runs(state, clock)
        d = await only_delivery(state)
        assert d.status == "delivered"
        assert d.total_attempts == 2  # the abandoned one and the delivered one
        tries = await attempts(state, d.id)
        assert [a.outcome for a in tries] == ["abandoned", "delivered"]
        assert [a.worker for a in tries] == ["dead-1", "survivor"]
        assert len(rx.requests) == 1


async def test_abandoned_attempts_move_the_retry_schedule_on(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(fail_first=10)) as rx:
        clock = await one_report(state, project, client, rx.url, retry_schedule=[0, 5, 300])
        await die_while_sending(state, clock, "dead-1")
        await survivor_runs(state, clock)  # the 2nd attempt fails: the 3rd is due 300 s later
        d = await only_delivery(state)
        assert (d.status, d.attempts) == ("failed", 2)
        assert d.next_attempt_at is not None
        assert 290 <= (d.next_attempt_at - clock()).total_seconds() <= 310


async def test_a_report_that_keeps_killing_workers_is_given_up_on(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as primary, serve_receiver(Receiver()) as backup:
        await add_dest(state, project, primary.url)
        clock = await one_report(state, project, client, backup.url, backup=True)
        for i in range(MAX_ABANDONED_IN_A_ROW):
            await die_while_sending(state, clock, f"dead-{i + 1}")
        await survivor_runs(state, clock, times=2)
        d = await only_delivery(state)
        assert d.status == "delivered"
        tries = await attempts(state, d.id)
        outcomes = [a.outcome for a in tries]
        assert outcomes == ["abandoned"] * MAX_ABANDONED_IN_A_ROW + ["next", "delivered"]
        assert "stopped 3 times in a row" in (tries[-2].error or "")
        assert tries[-1].destination == backup.url
        assert primary.requests == []  # never sent again to where it killed the workers
        assert len(backup.requests) == 1


async def test_given_up_without_a_backup_is_dead(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        clock = await one_report(state, project, client, rx.url)
        for i in range(MAX_ABANDONED_IN_A_ROW):
            await die_while_sending(state, clock, f"dead-{i + 1}")
        await survivor_runs(state, clock)
        d = await only_delivery(state)
        assert d.status == "dead"
        assert "lease expired each time" in (d.last_error or "")
        assert rx.requests == []


async def test_a_recorded_attempt_ends_the_streak(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(fail_first=1)) as rx:
        clock = await one_report(state, project, client, rx.url, retry_schedule=[0, 5, 5, 5, 5, 5])
        await die_while_sending(state, clock, "dead-1")
        await die_while_sending(state, clock, "dead-2")
        worker = Worker(state, name="survivor", now=clock, rand=lambda: 0.5)
        await worker.run_until_idle()  # fails (recorded): the streak of 2 ends here
        clock.advance(10)
        await die_while_sending(state, clock, "dead-3")
        await die_while_sending(state, clock, "dead-4")
        await worker.run_until_idle()  # 2 in a row again, not 4: it is sent and delivered
        await worker.sender.close()
        d = await only_delivery(state)
        assert d.status == "delivered"
        outcomes = [a.outcome for a in await attempts(state, d.id)]
        assert outcomes == [
            "abandoned",
            "abandoned",
            "retry",
            "abandoned",
            "abandoned",
            "delivered",
        ]
        assert len(rx.requests) == 2
