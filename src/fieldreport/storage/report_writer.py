"""Writing accepted reports: each report's rows and its outbox row, many reports per commit.

Concurrent reports share one transaction (:class:`GroupCommit`): with SQLite's single writer
and ``synchronous=FULL`` every commit costs a device flush, and on PostgreSQL the ticket
counter's row lock is held until commit, so one transaction per report caps intake at the
commit rate. Each caller is answered only after the commit that holds its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.deliveries import enqueue_report
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report


@dataclass(frozen=True)
class NewReport:
    report_id: str
    project_id: int
    created_at: datetime
    fields: ReportFields
    files: list[StoredFile]


@dataclass(frozen=True)
class WrittenReport:
    ticketnr: int
    delivery_id: int | None  # None when the project has no enabled destination


async def write_reports(conn: AsyncConnection, rows: list[NewReport]) -> list[WrittenReport]:
    """Insert reports, their files and their delivery rows in the caller's transaction."""
    written: list[WrittenReport] = []
    for row in rows:
        ticketnr = await insert_report(
            conn,
            report_id=row.report_id,
            project_id=row.project_id,
            created_at=row.created_at,
            fields=row.fields,
            files=row.files,
        )
        # The delivery outbox: its row commits atomically with the report.
        delivery_id = await enqueue_report(
            conn, report_id=row.report_id, project_id=row.project_id, now=row.created_at
        )
        written.append(WrittenReport(ticketnr, delivery_id))
    return written
