"""A worker claims ahead of what it may send (so its lanes have work while a turn records and
claims), and still sends no more than its limits allow: per destination, and not at all to a
destination whose circuit is open; claims held for such a destination are given back."""

from __future__ import annotations

import asyncio

import httpx

from fieldreport.delivery.breaker import CircuitBreakers
from fieldreport.delivery.dispatch import Dispatch, Queued
from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.deliveries import list_deliveries
from fieldreport.storage.destinations import Destination
from fieldreport.storage.outbox import Claim
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import FakeClock, add_dest, attempts, submit
from tests.delivery.receivers import Receiver, SlowReceiver, serve_receiver


def _claim(delivery_id: int, dest: Destination | None) -> Queued:
    claim = Claim(delivery_id, delivery_id, f"r{delivery_id}", 1, dest, 0, 0)
    return Queued(claim, None, {})


class _Dest:
    def __init__(self, dest_id: int) -> None:
        self.id = dest_id


def test_dispatch_claims_ahead_and_sends_within_the_limits() -> None:
    now = [0.0]
    breakers = CircuitBreakers(threshold=1, cooldown=10, clock=lambda: now[0])
    d = Dispatch(breakers, per_destination=2, ahead=2)
    a, b = _Dest(1), _Dest(2)
    assert d.default_room == 4 and d.room() == {}
    for i, dest in enumerate([a, a, a, b, None], start=1):
        d.add(_claim(i, dest))  # type: ignore[arg-type]
    assert d.room() == {1: 1, 2: 3}  # claimed ahead: twice the per-destination limit
    sent = [d.next(), d.next(), d.next(), d.next()]
    # Two to destination 1 (its limit), the third waits; then destination 2 and the claim
    # whose destination is gone (recorded by the worker without a send).
    assert [q.claim.delivery_id for q in sent if q] == [1, 2, 4, 5]
    assert d.next() is None and [q.claim.delivery_id for q in d.queue] == [3]
    d.done(1, sent=True)
    third = d.next()
    assert third is not None and third.claim.delivery_id == 3

    # A failure opens destination 1's circuit: nothing more to it starts, and what is queued
    # for it is held back (for the worker to give back); it is claimed no further.
    breakers.record(1, ok=False)
    d.add(_claim(6, a))  # type: ignore[arg-type]
    assert d.next() is None
    assert [q.claim.delivery_id for q in d.held_back()] == [6]
    d.done(6, sent=False)
    assert not d.queue and d.room()[1] <= 0
    now[0] = 11  # half-open: one trial may be claimed and sent, once the others are done
    for delivery_id in (2, 3, 4, 5):
        d.done(delivery_id, sent=delivery_id != 5)
    assert d.room() == {1: 1}
    d.add(_claim(7, a))  # type: ignore[arg-type]
    d.add(_claim(8, a))  # type: ignore[arg-type]
    trial = d.next()
    assert trial is not None and trial.claim.delivery_id == 7
    assert d.next() is None  # the trial is in flight
    assert d.inflight == {7: 1, 8: 1}


async def test_worker_claims_ahead_of_its_per_destination_limit(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(SlowReceiver()) as rx:
        await add_dest(state, project, rx.url)
        for i in range(6):
            await submit(client, project, subject=f"r{i}")
        worker = Worker(state)
        worker.per_destination = 2
        try:
            assert len(await worker.claim()) == 4  # claimed ahead: twice the limit
            while worker._lanes:
                await asyncio.wait(list(worker._lanes))
            assert await worker.run_until_idle() == 2  # the last two
        finally:
            await worker.sender.close()
        assert len(rx.requests) == 6 and rx.peak == 2
    async with state.db.read() as conn:
        assert {d.status for d in await list_deliveries(conn)} == {"delivered"}


async def test_claims_queued_for_an_opened_circuit_are_given_back(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver(fail_first=100, fail_status=500)) as rx:
        await add_dest(state, project, rx.url, retry_schedule=[0, 60])
        for i in range(2):
            await submit(client, project, subject=f"r{i}")
        clock = FakeClock()
        clock.sync()
        worker = Worker(state, now=clock, breakers=CircuitBreakers(threshold=1))
        worker.per_destination = 1
        try:
            # Both claimed (ahead), one sent: it fails and opens the circuit, so the other is
            # not sent; recording gives it back untouched.
            assert await worker.run_until_idle() == 2
        finally:
            await worker.sender.close()
        assert len(rx.requests) == 1
    async with state.db.read() as conn:
        found = sorted(await list_deliveries(conn), key=lambda d: d.attempts)
    untouched, failed = found
    assert (failed.status, failed.attempts, failed.lease_owner) == ("failed", 1, None)
    assert [a.outcome for a in await attempts(state, failed.id)] == ["retry"]
    assert (untouched.status, untouched.attempts, untouched.lease_owner) == ("pending", 0, None)
    assert untouched.lease_expires_at is None
    assert await attempts(state, untouched.id) == []  # nothing was attempted
