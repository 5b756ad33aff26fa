"""Delivery gauges for ``/metrics``, read from the outbox at scrape time."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Gauge

from fieldreport.metrics import Metrics
from fieldreport.state import AppState
from fieldreport.storage.deliveries import STATUSES, attempts_by_outcome, outbox_stats
from fieldreport.storage.schema.base import utcnow

ATTEMPT_OUTCOMES = ("in_flight", "delivered", "retry", "next", "dead", "abandoned")


def register(metrics: Metrics, current_state: Callable[[], AppState | None]) -> None:
    by_status = Gauge(
        "fieldreport_deliveries",
        "Deliveries in the outbox by status.",
        ["status"],
        registry=metrics.registry,
    )
    oldest = Gauge(
        "fieldreport_delivery_oldest_due_seconds",
        "How long the oldest due (pending or failed) delivery has been waiting.",
        registry=metrics.registry,
    )
    leases = Gauge(
        "fieldreport_delivery_leases",
        "Deliveries currently claimed by a worker (sends in flight).",
        registry=metrics.registry,
    )

    attempts = Gauge(
        "fieldreport_delivery_attempts",
        "Delivery attempts recorded in the database, by outcome (every worker process): "
        "in_flight, delivered, retry, next, dead, abandoned.",
        ["outcome"],
        registry=metrics.registry,
    )

    async def collect() -> None:
        state = current_state()
        if state is None:
            return
        now = utcnow()
        async with state.db.read() as conn:
            stats = await outbox_stats(conn, now)
            by_outcome = await attempts_by_outcome(conn)
        for status in STATUSES:
            by_status.labels(status).set(stats.counts.get(status, 0))
        oldest.set((now - stats.oldest_due).total_seconds() if stats.oldest_due else 0)
        leases.set(stats.leased)
        for outcome in sorted({*ATTEMPT_OUTCOMES, *by_outcome}):
            attempts.labels(outcome).set(by_outcome.get(outcome, 0))

    metrics.add_collector(collect)
