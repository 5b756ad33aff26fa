"""A per-destination circuit breaker, so one dead receiver does not slow the others.

After ``threshold`` consecutive failures the circuit opens: the worker stops claiming that
destination's deliveries for ``cooldown`` seconds (they wait, no attempt is used up). Then one
trial attempt is let through (half-open): success closes the circuit, failure opens it again
with a doubled cooldown (up to ``max_cooldown``). The clock is injectable; no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    cooldown: float = 0.0
    trial_in_flight: bool = False


class CircuitBreakers:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 10.0,
        max_cooldown: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        # Only destinations that failed since their last success have a circuit: one that
        # is not here is closed (Dispatch.next reads this, to skip admit() and started()).
        self.circuits: dict[int, _Circuit] = {}

    def blocked(self) -> set[int]:
        """Destinations whose deliveries must not be claimed right now."""
        now = self._clock()
        out = set()
        for dest, c in self.circuits.items():
            if c.failures >= self.threshold and (now < c.open_until or c.trial_in_flight):
                out.add(dest)
        return out

    def limits(self) -> dict[int, int]:
        """For every destination with an open or half-open circuit: how many may start."""
        return {
            dest: self.admit(dest)
            for dest, c in self.circuits.items()
            if c.failures >= self.threshold
        }

    def admit(self, dest: int) -> int:
        """How many deliveries to ``dest`` may start now: 0 when open, 1 when half-open."""
        c = self.circuits.get(dest)
        if c is None or c.failures < self.threshold:
            return 1 << 30
        if c.trial_in_flight or self._clock() < c.open_until:
            return 0
        return 1

    def started(self, dest: int) -> None:
        c = self.circuits.get(dest)
        if c is not None and c.failures >= self.threshold:
            c.trial_in_flight = True

    def record(self, dest: int, ok: bool) -> None:
        if ok:
            # Closed (forgotten), trial or not; no circuit is built for the common case.
            self.circuits.pop(dest, None)
            return
        c = self.circuits.get(dest)
        if c is None:
            c = self.circuits[dest] = _Circuit()
        was_trial = c.trial_in_flight
        c.trial_in_flight = False
        c.failures += 1
        if c.failures == self.threshold:
            c.cooldown = self.base_cooldown
            c.open_until = self._clock() + c.cooldown
        elif c.failures > self.threshold and was_trial:
            c.cooldown = min(c.cooldown * 2, self.max_cooldown)
            c.open_until = self._clock() + c.cooldown

    def is_open(self, dest: int) -> bool:
        return self.admit(dest) == 0
