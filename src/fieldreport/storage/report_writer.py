"""Writing accepted reports: each report's rows and its outbox row, many reports per commit.

:func:`write_reports` is the batch writer's job for reports (:mod:`fieldreport.storage.writer`):
concurrent reports share one transaction and multi-row statements, with one ticket-counter
update per project. With SQLite's single writer and ``synchronous=FULL`` every commit costs a
device flush, and on PostgreSQL the ticket counter's row lock is held until commit, so one
transaction per report would cap intake at the commit rate. Each caller is answered only
after the commit that holds its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from fieldreport.storage.deliveries import enqueue_reports
from fieldreport.storage.reports import NewReport, insert_reports

__all__ = ["NewReport", "WrittenReport", "write_reports"]


@dataclass(frozen=True)
class WrittenReport:
    ticketnr: int
    delivery_id: int | None  # None when the project has no enabled destination


def write_reports(conn: Connection, rows: list[NewReport]) -> list[WrittenReport]:
    """Insert reports, their files and their delivery rows in the caller's transaction."""
    ticketnrs = insert_reports(conn, rows)
    # The delivery outbox: its rows commit atomically with the reports.
    delivery_ids = enqueue_reports(conn, [(r.report_id, r.project_id, r.created_at) for r in rows])
    return [WrittenReport(t, d) for t, d in zip(ticketnrs, delivery_ids, strict=True)]
