"""Dashboard queries on reports: text search with date filters and pages, reports per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.reports import _REPORT_COLUMNS, Report, _files_for, _report
from fieldreport.storage.schema.core import projects, reports
from fieldreport.storage.schema.delivery import deliveries

# Delivery filters of the reports list: name -> the delivery statuses it covers
# ("none": reports without a delivery, e.g. sent while the project had no destination).
DELIVERY_FILTERS = {
    "delivered": ("delivered",),
    "progress": ("pending", "failed"),
    "dead": ("dead",),
    "none": (),
}

SEARCHED = (
    reports.c.subject,
    reports.c.sendercomment,
    reports.c.senderemail,
    reports.c.referer,
    reports.c.additionalinfo,
)


@dataclass(frozen=True)
class ReportPage:
    reports: list[Report]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filters(
    project_id: int,
    q: str,
    since: datetime | None,
    until: datetime | None,
    delivery: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [reports.c.project_id == project_id]
    for word in q.split():
        if word.isdigit():  # "42" also finds ticket #42
            ticket: sa.ColumnElement[bool] = reports.c.ticketnr == int(word)
        else:
            ticket = sa.false()
        pattern = _like_pattern(word)
        where.append(
            sa.or_(ticket, *(sa.func.lower(col).like(pattern, escape="\\") for col in SEARCHED))
        )
    if since is not None:
        where.append(reports.c.created_at >= since)
    if until is not None:
        where.append(reports.c.created_at < until)
    if delivery in DELIVERY_FILTERS:
        statuses = DELIVERY_FILTERS[delivery]
        exists = sa.select(deliveries.c.id).where(deliveries.c.report_id == reports.c.id)
        if statuses:
            where.append(exists.where(deliveries.c.status.in_(statuses)).exists())
        else:
            where.append(~exists.exists())
    return where


async def search_reports(
    conn: AsyncConnection,
    project_id: int,
    *,
    q: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    delivery: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> ReportPage:
    """Newest first. Every word of ``q`` must match a text field (case-insensitive)."""
    where = _filters(project_id, q, since, until, delivery)
    total = int(
        (
            await conn.execute(sa.select(sa.func.count()).select_from(reports).where(*where))
        ).scalar_one()
    )
    page = max(1, page)
    rows = (
        await conn.execute(
            sa.select(*_REPORT_COLUMNS)
            .join_from(reports, projects, reports.c.project_id == projects.c.id)
            .where(*where)
            .order_by(reports.c.ticketnr.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    ).all()
    files = await _files_for(conn, [r._mapping["id"] for r in rows])
    found = [_report(r._mapping, files[r._mapping["id"]]) for r in rows]
    return ReportPage(found, total, page, per_page)


def _utc_day(conn: AsyncConnection) -> sa.ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        expr = sa.func.to_char(sa.func.timezone("UTC", reports.c.created_at), "YYYY-MM-DD")
    else:  # SQLite stores naive UTC text
        expr = sa.func.strftime("%Y-%m-%d", reports.c.created_at)
    return sa.cast(expr, sa.String)


async def reports_per_day(
    conn: AsyncConnection, project_ids: list[int], *, days: int, today: date
) -> dict[int, list[tuple[date, int]]]:
    """For each project, the number of reports on each of the last ``days`` UTC days
    (oldest first, days without reports included as 0)."""
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = _utc_day(conn).label("day")
    rows = await conn.execute(
        sa.select(reports.c.project_id, day, sa.func.count())
        .where(reports.c.project_id.in_(project_ids) & (reports.c.created_at >= start))
        .group_by(reports.c.project_id, day)
    )
    counts: dict[tuple[int, str], int] = {(r[0], r[1]): int(r[2]) for r in rows}
    out: dict[int, list[tuple[date, int]]] = {}
    for pid in project_ids:
        series = []
        for i in range(days):
            d = first + timedelta(days=i)
            series.append((d, counts.get((pid, d.isoformat()), 0)))
        out[pid] = series
    return out
