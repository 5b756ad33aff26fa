"""The worker's claimed deliveries between their claim and their record: which wait for a
lane, how many each destination has claimed and is sending, which one a free lane sends next.

A worker claims more than it sends at once (``ahead`` times the limits, see :meth:`room`), so
that its lanes still have work while a turn of the batch writer records what finished and
claims the next (a commit and two thread hops: 10-20 ms on a loaded machine, in which 64
lanes finish most of their sends). Claiming only as much as may be sent at once left the
lanes idle for most of each turn: on the delivery benchmark ~18 of 64 sends were in flight
on average. The limits on sending are kept where the sends start (:meth:`next`): at most
``per_destination`` to one destination at a time, none to a destination whose circuit is
open, and a single trial when it is half-open (its breaker is told as the trial starts).
Claims held for a destination whose circuit opened after they were claimed are given back
by the worker (:meth:`held_back`) rather than kept leased for the cooldown.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from fieldreport.delivery.breaker import CircuitBreakers
from fieldreport.storage.outbox import Claim
from fieldreport.storage.reports import Report


class Queued(NamedTuple):
    claim: Claim
    report: Report | None  # None: deleted since it was queued for delivery
    files: dict[str, bytes]  # the report's files read ahead (by blob key)


class Dispatch:
    def __init__(self, breakers: CircuitBreakers, per_destination: int, ahead: int) -> None:
        self.breakers = breakers
        self.per_destination = per_destination
        self.ahead = ahead
        # Claimed and not finished: delivery id -> destination id (None: removed, disabled).
        self.inflight: dict[int, int | None] = {}
        self.queue: deque[Queued] = deque()
        self._claimed: dict[int, int] = {}  # per destination: queued or being sent
        self._sending: dict[int, int] = {}  # per destination: being sent

    # --- claiming -----------------------------------------------------------------------------
    @property
    def default_room(self) -> int:
        """How many deliveries a destination with nothing claimed may have claimed."""
        return self.ahead * self.per_destination

    def room(self) -> dict[int, int]:
        """How many more may be claimed per destination (others: :attr:`default_room`).
        A destination whose circuit is not closed is not claimed ahead: as many as may
        start (none when open, one trial when half-open), less what is held already."""
        claimed = self._claimed
        room = {dest: self.default_room - n for dest, n in claimed.items()}
        for dest, allowed in self.breakers.limits().items():
            room[dest] = min(self.per_destination, allowed) - claimed.get(dest, 0)
        return room

    def add(self, item: Queued) -> None:
        claim = item.claim
        dest = claim.destination.id if claim.destination is not None else None
        self.inflight[claim.delivery_id] = dest
        if dest is not None:
            self._claimed[dest] = self._claimed.get(dest, 0) + 1
        self.queue.append(item)

    # --- sending --------------------------------------------------------------------------------
    def next(self) -> Queued | None:
        """The first queued claim that may be sent now (taken from the queue and counted as
        being sent), or None."""
        queue = self.queue
        breakers = self.breakers
        circuits = breakers.circuits  # a destination not in it is closed: nothing to ask
        for i, item in enumerate(queue):
            dest = item.claim.destination
            if dest is None:
                del queue[i]
                return item
            dest_id = dest.id
            sending = self._sending.get(dest_id, 0)
            if sending >= self.per_destination:
                continue
            tripped = dest_id in circuits
            if tripped and breakers.admit(dest_id) <= 0:
                continue
            del queue[i]
            self._sending[dest_id] = sending + 1
            if tripped:
                breakers.started(dest_id)
            return item
        return None

    def done(self, delivery_id: int, *, sent: bool) -> None:
        """A claim is finished (``sent``: it came from :meth:`next`) or given back."""
        dest = self.inflight.pop(delivery_id, None)
        if dest is None:
            return
        _decrement(self._claimed, dest)
        if sent:
            _decrement(self._sending, dest)

    def held_back(self) -> list[Queued]:
        """Queued claims for destinations whose circuit lets none start now, taken from the
        queue (for the worker to give back: their leases released, nothing attempted)."""
        if not self.breakers.limits():
            return []
        admit = self.breakers.admit
        held = [q for q in self.queue if q.claim.destination and admit(q.claim.destination.id) <= 0]
        if held:
            keep = {id(q) for q in held}
            self.queue = deque(q for q in self.queue if id(q) not in keep)
        return held


def _decrement(counts: dict[int, int], key: int) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
