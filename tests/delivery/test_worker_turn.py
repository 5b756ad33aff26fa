"""A busy worker's turn: the attempts that finished are recorded and the next deliveries
claimed in one batch writer job (one transaction); on SQLite the records are one
``UPDATE ... FROM (VALUES ...)`` per table, or an ``executemany`` before SQLite 3.33."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage import attempt_records
from fieldreport.storage.deliveries import list_deliveries
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import FakeClock, add_dest, attempts, submit
from tests.delivery.receivers import Receiver, serve_receiver


async def _lanes_done(worker: Worker) -> None:
    while worker._lanes:
        await asyncio.wait(list(worker._lanes))


@pytest.mark.parametrize("old_sqlite", [False, True], ids=["update-from", "executemany"])
async def test_turn_records_and_claims_in_one_transaction(
    state: AppState,
    project: NewProject,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    old_sqlite: bool,
) -> None:
    if old_sqlite:
        monkeypatch.setattr(attempt_records, "_SQLITE_VERSION", (3, 32, 0))
    async with serve_receiver(Receiver(fail_first=1)) as rx:
        await _turns(state, project, client, rx)


async def _turns(
    state: AppState, project: NewProject, client: httpx.AsyncClient, rx: Receiver
) -> None:
    await add_dest(state, project, rx.url, retry_schedule=[0, 0, 0])
    for i in range(3):
        await submit(client, project, subject=f"turn {i}")
    clock = FakeClock()
    clock.sync()
    worker = Worker(state, now=clock, rand=lambda: 0.5)
    try:
        await _two_turns(state, worker, rx)
    finally:
        await worker.sender.close()


async def _two_turns(state: AppState, worker: Worker, rx: Receiver) -> None:
    worker.concurrency = 1  # one lane: the first request is the one that fails
    assert len(await worker.claim()) == 2  # PREFETCH x concurrency
    await _lanes_done(worker)
    assert len(worker._finished) == 2  # one retry (503, due again at once), one delivered

    before = state.writer.transactions
    claims = await worker.turn()
    assert state.writer.transactions == before + 1  # records and claim: one transaction
    assert not worker._finished
    # The retried delivery (due at once) and the third report, claimed in that turn.
    assert len(claims) == 2
    await _lanes_done(worker)
    assert await worker.turn() == []  # records the last two; nothing left to claim
    assert not worker._finished

    async with state.db.read() as conn:
        found = await list_deliveries(conn)
    assert sorted(d.status for d in found) == ["delivered"] * 3
    history = []
    for d in found:
        history.append([(a.outcome, a.status_code) for a in await attempts(state, d.id)])
    history.sort()
    assert history == [
        [("delivered", 200)],
        [("delivered", 200)],
        [("retry", 503), ("delivered", 200)],
    ]
    retried = next(d for d in found if d.total_attempts == 2)
    assert retried.attempts == 2 and retried.last_status_code == 200
    assert all(d.lease_owner is None for d in found)
    assert len(rx.requests) == 4


async def test_a_delivered_attempt_reads_the_clock_once(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    """Its start; a success needs no retry time (the policy's shared answer is recorded)."""
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url)
        for i in range(2):
            await submit(client, project, subject=f"once {i}")
        clock = FakeClock()
        clock.sync()
        reads = [0]

        def counted() -> datetime:
            reads[0] += 1
            return clock()

        worker = Worker(state, now=counted, rand=lambda: 0.5)
        try:
            assert len(await worker.claim()) == 2
            before = reads[0]  # the lanes start once the claim returns
            await _lanes_done(worker)
            assert reads[0] - before == 2
            assert [f.action for f in worker._finished] == ["delivered", "delivered"]
            assert all(f.started_at == clock.now for f in worker._finished)
            await worker.flush()
        finally:
            await worker.sender.close()
    async with state.db.read() as conn:
        assert [d.status for d in await list_deliveries(conn)] == ["delivered"] * 2


async def _until_delivered(state: AppState, count: int) -> None:
    for _ in range(500):
        async with state.db.read() as conn:
            found = await list_deliveries(conn, limit=1000)
        if sum(d.status == "delivered" for d in found) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} delivered")


async def test_running_worker_keeps_its_lanes_between_turns(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    """While :meth:`Worker.run` runs, a lane with nothing to send waits for the next claims
    instead of ending (and being started again at the next turn); they all end on stop."""
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url)
        for i in range(6):
            await submit(client, project, subject=f"a{i}")
        worker = Worker(state)
        worker.concurrency = 4
        worker.per_destination = 4
        started: list[asyncio.Task[None]] = []
        create_task = asyncio.create_task

        def counting(coro, **kw):  # type: ignore[no-untyped-def]
            task = create_task(coro, **kw)
            if kw.get("name") == "delivery-lane":
                started.append(task)
            return task

        asyncio_create_task, asyncio.create_task = asyncio.create_task, counting
        try:
            task = create_task(worker.run())
            await _until_delivered(state, 6)
            lanes = set(worker._lanes)
            assert 0 < len(lanes) <= 4 and all(not t.done() for t in lanes)  # idle, alive
            first = len(started)
            for i in range(6):
                await submit(client, project, subject=f"b{i}")
            state.delivery_wake.set()
            await _until_delivered(state, 12)
            assert len(started) == first  # the same lanes sent the second wave
            assert set(worker._lanes) == lanes
            worker.request_stop(5)
            await task
        finally:
            asyncio.create_task = asyncio_create_task
        assert not worker._lanes and all(t.done() for t in started)
        assert len(rx.requests) == 12
    async with state.db.read() as conn:
        assert {d.status for d in await list_deliveries(conn)} == {"delivered"}
