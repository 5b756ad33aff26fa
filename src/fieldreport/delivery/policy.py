"""The retry policy: what happens after an attempt. Pure: no I/O, no clock of its own.

Every destination has a retry schedule: the delay before each attempt (the first is usually
0s). After a failed attempt the next one is scheduled after the next delay of the schedule,
with +-10% jitter so a receiver that comes back is not hit by every report at the same
instant. ``Retry-After`` on 429/503 is honoured within bounds. When the schedule is exhausted,
the answer says so permanently (e.g. 410 Gone, which also disables the destination), the
delivery gives up on this destination: it moves to the next one of the project's chain, or
is marked dead (kept for redelivery) when none is left.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from fieldreport.delivery.transports.base import SendResult

DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_TIMEOUT = 15.0
JITTER = 0.1
RETRY_AFTER_MIN = 1.0
RETRY_AFTER_MAX = 6 * 3600.0
MAX_ATTEMPTS_PER_DESTINATION = 50
#: A delivery whose worker died this many times in a row while sending it to one destination
#: (e.g. a report that crashes the renderer or exhausts memory) is given up on there.
MAX_ABANDONED_IN_A_ROW = 3


class Action(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"  # move to the next destination of the chain, or dead when none is left


@dataclass  # read-only; not frozen: ~600 instructions a field less for each delivery
class Decision:
    action: Action
    next_attempt_at: datetime | None = None
    disable_destination: bool = False
    reason: str = ""


#: The decision after any successful attempt (one object, shared: read-only).
DELIVERED = Decision(Action.DELIVERED, reason="delivered")


def classify_http_status(status: int) -> tuple[bool, bool]:
    """(ok, permanent) for an HTTP answer: any 2xx succeeds; redirects are not followed and
    fail like any other answer; 410 Gone is permanent (and disables the destination)."""
    if 200 <= status < 300:
        return True, False
    return False, status == 410


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def jittered(delay: float, rand: Callable[[], float]) -> float:
    return max(0.0, delay * (1 + JITTER * (2 * rand() - 1)))


def decide(
    result: SendResult,
    *,
    attempts: int,
    schedule: Sequence[float],
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """Decide after an attempt. ``attempts`` counts the attempts made on this destination,
    this one included; ``schedule[i]`` is the delay before attempt ``i + 1``."""
    if result.ok:
        return DELIVERED
    if result.status_code == 410:
        return Decision(
            Action.GIVE_UP,
            disable_destination=True,
            reason="410 Gone: the receiver asked us to stop; destination disabled",
        )
    if result.permanent:
        return Decision(Action.GIVE_UP, reason=f"permanent failure: {result.error or 'refused'}")
    limit = min(len(schedule), MAX_ATTEMPTS_PER_DESTINATION)
    if attempts >= limit:
        return Decision(
            Action.GIVE_UP, reason=f"retry schedule exhausted after {attempts} attempts"
        )
    delay = jittered(float(schedule[attempts]), rand)
    if result.retry_after is not None and result.status_code in (429, 503):
        wanted = min(max(result.retry_after, RETRY_AFTER_MIN), RETRY_AFTER_MAX)
        delay = max(delay, wanted)
    return Decision(
        Action.RETRY,
        next_attempt_at=now + timedelta(seconds=delay),
        reason=f"attempt {attempts} failed; next in {delay:.0f}s",
    )


def parse_schedule(text: str) -> list[float]:
    """``"0s,5s,5m"`` -> [0.0, 5.0, 300.0]."""
    from fieldreport.units import parse_duration

    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise ValueError("a retry schedule needs at least one delay, e.g. 0s,5s,5m")
    if len(items) > MAX_ATTEMPTS_PER_DESTINATION:
        raise ValueError(f"a retry schedule has at most {MAX_ATTEMPTS_PER_DESTINATION} attempts")
    return [parse_duration(item) for item in items]


def random_source(seed: int | None = None) -> Callable[[], float]:
    return random.Random(seed).random
