"""The write path's counters for ``/metrics``: how many requests share a commit and a flush.

The batch writer (:mod:`fieldreport.storage.writer`) and the local blob store's group flush
(:mod:`fieldreport.storage.blobs.flush`) count in plain ints where the work already happens
(their own threads, once per transaction or ``syncfs``; the store's blob count once per
write on the event loop); this collector turns them into counter samples at scrape time.
No ``Counter.inc()`` on the hot path: it takes a lock per call.

Per process, like the HTTP counters: a scrape reaches one server process and shows that
process's writes. ``jobs / transactions`` is the number of requests that shared a commit,
``flushes / flush waits`` the number of ``syncfs`` calls per request that waited for one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from fieldreport.metrics import Metrics
from fieldreport.state import AppState
from fieldreport.storage.blobs.base import FlushCounts

_PER_PROCESS = " (this server process)"

#: (name without ``_total``, help) of each counter, in exposition order.
_COUNTERS = (
    (
        "fieldreport_db_write_transactions",
        "Batch-writer transactions committed" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_db_write_transactions_failed",
        "Batch-writer transactions that failed as a whole, every job in them with it"
        + _PER_PROCESS
        + ".",
    ),
    (
        "fieldreport_db_write_jobs",
        "Batch-writer jobs committed: one per request (report, session batch, events "
        "request) or delivery-worker step that waited for a commit" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_db_write_jobs_failed",
        "Batch-writer jobs answered with an error (their transaction failed, or their own "
        "rows were refused)" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_db_write_items",
        "Items in committed batch-writer jobs: one per backend event, report, session "
        "batch or delivery-worker step" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_blob_flushes",
        "Group flushes (one syncfs each) of the local blob store that succeeded; 0 on S3 "
        "and without syncfs" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_blob_flushes_failed",
        "Group flushes of the local blob store that failed" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_blob_flush_waits",
        "Requests (callers) answered by a group flush of the local blob store" + _PER_PROCESS + ".",
    ),
    (
        "fieldreport_blobs_flushed",
        "Blobs made durable by successful group flushes of the local blob store"
        + _PER_PROCESS
        + ".",
    ),
)


class WriteMetrics(Collector):
    """The counters above, read from the current app state's writer and blob store."""

    def __init__(self, current_state: Callable[[], AppState | None]) -> None:
        self._current_state = current_state

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(name, doc) for name, doc in _COUNTERS]

    def collect(self) -> Iterable[Metric]:
        state = self._current_state()
        values = _values(state) if state is not None else (0,) * len(_COUNTERS)
        return [
            CounterMetricFamily(name, doc, value=value)
            for (name, doc), value in zip(_COUNTERS, values, strict=True)
        ]


def _values(state: AppState) -> tuple[int, ...]:
    writer = state.writer
    flushed: FlushCounts = state.blobs.flush_counts()
    return (
        writer.transactions,
        writer.transactions_failed,
        writer.jobs_written,
        writer.jobs_failed,
        writer.items_written,
        flushed.flushes,
        flushed.failed,
        flushed.waits,
        flushed.blobs,
    )


def register(metrics: Metrics, current_state: Callable[[], AppState | None]) -> None:
    metrics.registry.register(WriteMetrics(current_state))
