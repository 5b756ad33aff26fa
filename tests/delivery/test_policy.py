"""The pure retry policy and the circuit breaker: no I/O, injectable clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fieldreport.delivery.breaker import CircuitBreakers
from fieldreport.delivery.policy import (
    DEFAULT_SCHEDULE,
    DELIVERED,
    RETRY_AFTER_MAX,
    Action,
    classify_http_status,
    decide,
    parse_retry_after,
    parse_schedule,
)
from fieldreport.delivery.transports.base import SendResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def failed(status: int | None = 500, **kw: object) -> SendResult:
    return SendResult(ok=False, duration_ms=1, status_code=status, **kw)  # type: ignore[arg-type]


def test_success_is_delivered() -> None:
    ok = SendResult(ok=True, duration_ms=1, status_code=204)
    decision = decide(ok, attempts=1, schedule=DEFAULT_SCHEDULE, now=NOW)
    assert decision.action == Action.DELIVERED
    assert decision is DELIVERED  # one shared answer (the worker records it directly)


@pytest.mark.parametrize(
    ("status", "ok", "permanent"),
    [(200, True, False), (201, True, False), (299, True, False), (301, False, False),
     (302, False, False), (304, False, False), (400, False, False), (410, False, True),
     (500, False, False)],
)  # fmt: skip
def test_http_status_classes(status: int, ok: bool, permanent: bool) -> None:
    assert classify_http_status(status) == (ok, permanent)


def test_follows_the_schedule_with_jitter_and_gives_up_when_exhausted() -> None:
    schedule = parse_schedule("0s,5s,5m,30m")
    assert schedule == [0, 5, 300, 1800]
    delays = []
    for attempts in (1, 2, 3):
        d = decide(failed(), attempts=attempts, schedule=schedule, now=NOW, rand=lambda: 0.5)
        assert d.action == Action.RETRY and d.next_attempt_at is not None
        delays.append((d.next_attempt_at - NOW).total_seconds())
    assert delays == [5, 300, 1800]
    last = decide(failed(), attempts=4, schedule=schedule, now=NOW)
    assert last.action == Action.GIVE_UP and "exhausted after 4" in last.reason
    low = decide(failed(), attempts=2, schedule=schedule, now=NOW, rand=lambda: 0.0)
    high = decide(failed(), attempts=2, schedule=schedule, now=NOW, rand=lambda: 1.0)
    assert low.next_attempt_at == NOW + timedelta(seconds=270)
    assert high.next_attempt_at == NOW + timedelta(seconds=330)


def test_410_disables_and_permanent_failures_give_up() -> None:
    gone = decide(failed(410), attempts=1, schedule=DEFAULT_SCHEDULE, now=NOW)
    assert gone.action == Action.GIVE_UP and gone.disable_destination
    perm = decide(failed(None, permanent=True, error="auth refused"), attempts=1,
                  schedule=DEFAULT_SCHEDULE, now=NOW)  # fmt: skip
    assert perm.action == Action.GIVE_UP and not perm.disable_destination


def test_retry_after_is_honoured_within_bounds() -> None:
    sched = [0, 5, 5]
    d = decide(
        failed(429, retry_after=120.0), attempts=1, schedule=sched, now=NOW, rand=lambda: 0.5
    )
    assert d.next_attempt_at == NOW + timedelta(seconds=120)
    huge = decide(failed(503, retry_after=10**9), attempts=1, schedule=sched, now=NOW,
                  rand=lambda: 0.5)  # fmt: skip
    assert huge.next_attempt_at == NOW + timedelta(seconds=RETRY_AFTER_MAX)
    # Shorter than the schedule: the schedule wins; on other statuses it is ignored.
    short = decide(failed(429, retry_after=1.0), attempts=1, schedule=[0, 60], now=NOW,
                   rand=lambda: 0.5)  # fmt: skip
    assert short.next_attempt_at == NOW + timedelta(seconds=60)
    other = decide(failed(500, retry_after=120.0), attempts=1, schedule=sched, now=NOW,
                   rand=lambda: 0.5)  # fmt: skip
    assert other.next_attempt_at == NOW + timedelta(seconds=5)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", NOW) == 120
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None


def test_bad_schedules_refused() -> None:
    for text in ("", "5x", ",".join(["1s"] * 51)):
        with pytest.raises(ValueError):
            parse_schedule(text)


def test_circuit_breaker_opens_half_opens_and_closes() -> None:
    t = [0.0]
    b = CircuitBreakers(threshold=3, cooldown=10, max_cooldown=25, clock=lambda: t[0])
    for _ in range(2):
        b.record(7, False)
    assert b.admit(7) > 1 and 7 not in b.blocked()
    b.record(7, False)
    assert b.admit(7) == 0 and b.blocked() == {7}
    b.record(7, False)  # a straggler in flight does not extend the cooldown
    t[0] = 10.0
    assert b.admit(7) == 1 and b.blocked() == set()  # half-open: one trial
    b.started(7)
    assert b.admit(7) == 0 and b.blocked() == {7}
    b.record(7, False)  # the trial failed: open for twice as long
    t[0] = 29.0
    assert b.admit(7) == 0
    t[0] = 30.0
    assert b.admit(7) == 1
    b.started(7)
    b.record(7, True)
    assert b.admit(7) > 1 and b.blocked() == set()
    assert b.admit(8) > 1  # other destinations never affected


def test_breaker_limits_for_claiming() -> None:
    t = [0.0]
    b = CircuitBreakers(threshold=2, cooldown=5, clock=lambda: t[0])
    b.record(1, False)
    assert b.limits() == {}
    b.record(1, False)
    assert b.limits() == {1: 0}
    t[0] = 5.0
    assert b.limits() == {1: 1}


def test_successes_keep_no_circuit() -> None:
    b = CircuitBreakers(threshold=3, cooldown=10, clock=lambda: 0.0)
    b.record(1, True)
    assert b.circuits == {}  # nothing built for a destination that never failed
    b.record(1, False)
    b.record(1, False)
    b.record(1, True)  # closes: the failures so far are forgotten
    assert b.circuits == {}
    b.record(1, False)
    b.record(1, False)
    assert b.admit(1) > 1 and b.limits() == {}
    b.record(1, False)
    assert b.admit(1) == 0
