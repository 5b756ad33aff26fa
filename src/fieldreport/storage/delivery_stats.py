"""Dashboard queries on deliveries: destination health and delivery outcomes per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.schema.base import UTCDateTime
from fieldreport.storage.schema.delivery import deliveries, delivery_attempts

FINISHED = ("delivered", "retry", "next", "dead", "abandoned")


@dataclass(frozen=True)
class DestinationHealth:
    attempts: int  # finished attempts in the window
    succeeded: int
    last_at: datetime | None
    last_outcome: str | None
    last_status_code: int | None
    last_error: str | None

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.attempts if self.attempts else None


async def destination_health(
    conn: AsyncConnection, destination_ids: list[int], *, since: datetime
) -> dict[int, DestinationHealth]:
    """Per destination: finished attempts since ``since``, how many delivered, the last one."""
    out: dict[int, DestinationHealth] = {}
    if not destination_ids:
        return out
    a = delivery_attempts.c
    counts = {
        int(r[0]): (int(r[1]), int(r[2] or 0))
        for r in await conn.execute(
            sa.select(
                a.destination_id,
                sa.func.count(),
                sa.func.sum(sa.case((a.outcome == "delivered", 1), else_=0)),
            )
            .where(
                a.destination_id.in_(destination_ids)
                & (a.started_at >= since)
                & a.outcome.in_(FINISHED)
            )
            .group_by(a.destination_id)
        )
    }
    last_ids = (
        sa.select(sa.func.max(a.id).label("id"))
        .where(a.destination_id.in_(destination_ids) & a.outcome.in_(FINISHED))
        .group_by(a.destination_id)
        .subquery()
    )
    lasts = {
        int(r.destination_id): r
        for r in await conn.execute(
            sa.select(a.destination_id, a.started_at, a.outcome, a.status_code, a.error).where(
                a.id.in_(sa.select(last_ids.c.id))
            )
        )
    }
    for did in destination_ids:
        n, ok = counts.get(did, (0, 0))
        last = lasts.get(did)
        out[did] = DestinationHealth(
            attempts=n,
            succeeded=ok,
            last_at=last.started_at if last else None,
            last_outcome=last.outcome if last else None,
            last_status_code=last.status_code if last else None,
            last_error=last.error if last else None,
        )
    return out


def _utc_day(conn: AsyncConnection) -> sa.ColumnElement[str]:
    col = deliveries.c.created_at
    if conn.dialect.name == "postgresql":
        expr = sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD")
    else:
        expr = sa.func.strftime("%Y-%m-%d", col)
    return sa.cast(expr, sa.String)


async def delivery_outcomes_per_day(
    conn: AsyncConnection, project_ids: list[int], *, days: int, today: date
) -> dict[int, dict[date, dict[str, int]]]:
    """For each project and UTC day (by report arrival): deliveries per current status."""
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = _utc_day(conn).label("day")
    rows = await conn.execute(
        sa.select(deliveries.c.project_id, day, deliveries.c.status, sa.func.count())
        .where(
            deliveries.c.project_id.in_(project_ids)
            & (deliveries.c.created_at >= sa.type_coerce(start, UTCDateTime))
        )
        .group_by(deliveries.c.project_id, day, deliveries.c.status)
    )
    out: dict[int, dict[date, dict[str, int]]] = {pid: {} for pid in project_ids}
    for pid, d, status, n in rows:
        out[int(pid)].setdefault(date.fromisoformat(d), {})[str(status)] = int(n)
    return out


async def delivery_status_of(conn: AsyncConnection, report_ids: list[str]) -> dict[str, str]:
    """Each report's delivery status (reports without a delivery are left out)."""
    if not report_ids:
        return {}
    rows = await conn.execute(
        sa.select(deliveries.c.report_id, deliveries.c.status)
        .where(deliveries.c.report_id.in_(report_ids))
        .order_by(deliveries.c.id)
    )
    return {str(r[0]): str(r[1]) for r in rows}
