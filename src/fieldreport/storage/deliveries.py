"""Queries on the delivery outbox: enqueueing, leases, inspection and redelivery (the
worker's claims and attempt records are in :mod:`~fieldreport.storage.outbox`).

Statuses: ``pending`` (not tried yet, or queued again for redelivery), ``failed`` (the last
attempt failed; another is scheduled), ``delivered``, ``dead`` (every destination of the
chain exhausted; kept for ``fieldreport delivery retry``). A claimed delivery carries a
lease (owner + expiry) that its worker renews; when a worker dies the lease runs out and
any other worker takes the delivery over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.pq.abc import PGresult
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage import driver, plainsql
from fieldreport.storage.bulk import RowInsert, insert_ids
from fieldreport.storage.destinations import Destination, first_in_chain, next_in_chain
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.core import projects, reports
from fieldreport.storage.schema.delivery import (
    deliveries,
    delivery_attempts,
    delivery_signing_keys,
)

PENDING, FAILED, DELIVERED, DEAD = "pending", "failed", "delivered", "dead"
STATUSES = (PENDING, FAILED, DELIVERED, DEAD)
DUE_STATUSES = (PENDING, FAILED)


@dataclass(frozen=True)
class Attempt:
    id: int
    destination_id: int | None
    destination: str
    worker: str
    started_at: datetime
    duration_ms: int | None
    status_code: int | None
    response_excerpt: str
    error: str | None
    outcome: str


@dataclass(frozen=True)
class Delivery:
    id: int
    report_id: str
    project_id: int
    destination_id: int | None
    position: int
    status: str
    attempts: int
    total_attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    ticketnr: int | None = None
    project_name: str | None = None


# --- the outbox ---------------------------------------------------------------------------


def enqueue_reports(
    conn: Connection,
    rows: list[tuple[str, int, datetime]],
    *,
    pg_firsts: PGresult | None = None,
) -> list[int | None]:
    """Add each ``(report id, project id, arrival time)``'s delivery row in the caller's
    transaction (the one that inserts the reports), in one statement. Returns their ids, or
    None for a report whose project has no enabled destination.

    On psycopg (the batch writer on PostgreSQL) the rows go in on libpq; ``pg_firsts``: the
    result of :data:`PG_FIRSTS` for the projects of ``rows``, when the caller ran it with
    its own statement (the report writer does, with the reports' inserts)."""
    if conn.dialect.driver == "psycopg":
        if pg_firsts is None:
            pg_firsts = driver.pg_exec_params(conn, _PG_FIRSTS_ALONE, [pg_projects(rows)], [0], [0])
        return _pg_enqueue(conn, rows, pg_firsts)
    firsts: dict[int, Destination | None] = {}
    for _, project_id, _ in rows:
        if project_id not in firsts:
            firsts[project_id] = first_in_chain(conn, project_id)
    wanted = [(report_id, firsts[project_id], now) for report_id, project_id, now in rows]
    values = [
        {
            "report_id": report_id,
            "project_id": first.project_id,
            "destination_id": first.id,
            "position": first.position,
            "status": PENDING,
            "attempts": 0,
            "total_attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for report_id, first, now in wanted
        if first is not None
    ]
    ids = iter(insert_ids(conn, deliveries, values))
    if values and conn.dialect.name == "postgresql":
        # Wakes workers in other processes when this transaction commits.
        driver.execute(conn, "NOTIFY fieldreport_deliveries")
    return [next(ids) if first is not None else None for _, first, _ in wanted]


# The batch writer on PostgreSQL (psycopg): the same rows straight on libpq. Through Core, a
# transaction of reports paid per project a chain query (a Destination built from the whole
# row) and then a multi-row INSERT ... RETURNING with its parameter processing, each with
# Core's execution context, and the NOTIFY on psycopg's cursor.

#: The first enabled destination of each project of the array parameter ``${param}`` (in
#: :func:`first_in_chain`'s order): project id, destination id, position.
PG_FIRSTS = (
    "SELECT DISTINCT ON (project_id) project_id, id, position FROM destinations"
    " WHERE project_id = ANY(${param}::integer[]) AND position > -1 AND enabled"
    " ORDER BY project_id, position, id"
)
_PG_FIRSTS_ALONE = PG_FIRSTS.format(param=1).encode()  # run on its own: its array is $1
_PG_INSERT_DELIVERIES = RowInsert(
    deliveries,
    ("report_id", "project_id", "destination_id", "position", "status", "attempts",
     "total_attempts", "next_attempt_at", "created_at", "updated_at"),
)  # fmt: skip


def pg_projects(rows: list[tuple[str, int, datetime]]) -> bytes:
    """The parameter of :data:`PG_FIRSTS` for the projects of ``rows``."""
    return driver.pg_text_array([str(p) for p in sorted({p for _, p, _ in rows})])


def _pg_enqueue(
    conn: Connection, rows: list[tuple[str, int, datetime]], firsts: PGresult
) -> list[int | None]:
    """:func:`enqueue_reports` on libpq, given the result of :data:`PG_FIRSTS` for the
    projects of ``rows`` (one query for all, not :func:`first_in_chain` per project, which
    built a Destination of the whole row): the delivery rows as one statement
    (:meth:`RowInsert.ids`), the NOTIFY as a simple query."""
    found = {
        int(project_id): (int(destination_id), int(position))  # type: ignore[arg-type]
        for project_id, destination_id, position in driver.pg_text_rows(firsts)
    }
    values = []
    for report_id, project_id, now in rows:
        first = found.get(project_id)
        if first is not None:
            plainsql.refuse_naive(now)
            destination_id, position = first
            values.append(
                (report_id, project_id, destination_id, position, PENDING, 0, 0, now, now, now)
            )
    if not values:
        return [None] * len(rows)
    ids = iter(_PG_INSERT_DELIVERIES.ids(conn, values))
    # Wakes workers in other processes when this transaction commits.
    driver.pg_command(conn, b"NOTIFY fieldreport_deliveries")
    return [next(ids) if project_id in found else None for _, project_id, _ in rows]


async def enqueue_report(
    conn: AsyncConnection, *, report_id: str, project_id: int, now: datetime
) -> int | None:
    """:func:`enqueue_reports` for one report, on an async connection."""
    return (await conn.run_sync(enqueue_reports, [(report_id, project_id, now)]))[0]


async def extend_leases(
    conn: AsyncConnection, owner: str, ids: Iterable[int], until: datetime
) -> None:
    ids = list(ids)
    if ids:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.id.in_(ids) & (deliveries.c.lease_owner == owner))
            .values(lease_expires_at=until)
        )


async def release(conn: AsyncConnection, owner: str, ids: Iterable[int]) -> None:
    """Give claimed deliveries back unattempted (graceful shutdown)."""
    ids = list(ids)
    if not ids:
        return
    await conn.execute(
        delivery_attempts.update()
        .where(
            delivery_attempts.c.delivery_id.in_(ids) & (delivery_attempts.c.outcome == "in_flight")
        )
        .values(outcome="abandoned", error="the worker shut down before finishing")
    )
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(ids) & (deliveries.c.lease_owner == owner))
        .values(lease_owner=None, lease_expires_at=None)
    )


# --- inspection and redelivery -------------------------------------------------------------


def _delivery(m: Any) -> Delivery:
    return Delivery(
        id=m["id"],
        report_id=m["report_id"],
        project_id=m["project_id"],
        destination_id=m["destination_id"],
        position=m["position"],
        status=m["status"],
        attempts=m["attempts"],
        total_attempts=m["total_attempts"],
        next_attempt_at=m["next_attempt_at"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        last_error=m["last_error"],
        last_status_code=m["last_status_code"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        delivered_at=m["delivered_at"],
        ticketnr=m.get("ticketnr"),
        project_name=m.get("project_name"),
    )


def _select() -> sa.Select[Any]:
    return sa.select(
        deliveries, reports.c.ticketnr, projects.c.name.label("project_name")
    ).select_from(
        deliveries.join(reports, reports.c.id == deliveries.c.report_id).join(
            projects, projects.c.id == deliveries.c.project_id
        )
    )


async def list_deliveries(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    report_id: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Newest first."""
    query = _select()
    if project_id is not None:
        query = query.where(deliveries.c.project_id == project_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if since is not None:
        query = query.where(deliveries.c.updated_at >= since)
    if report_id is not None:
        query = query.where(deliveries.c.report_id == report_id)
    rows = await conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit))
    return [_delivery(r._mapping) for r in rows]


async def get_delivery(conn: AsyncConnection, delivery_id: int) -> Delivery | None:
    row = (await conn.execute(_select().where(deliveries.c.id == delivery_id))).first()
    return _delivery(row._mapping) if row else None


async def attempts_of(conn: AsyncConnection, delivery_id: int) -> list[Attempt]:
    rows = await conn.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.id)
    )
    return [
        Attempt(
            id=m["id"],
            destination_id=m["destination_id"],
            destination=m["destination"],
            worker=m["worker"],
            started_at=m["started_at"],
            duration_ms=m["duration_ms"],
            status_code=m["status_code"],
            response_excerpt=m["response_excerpt"],
            error=m["error"],
            outcome=m["outcome"],
        )
        for m in (r._mapping for r in rows)
    ]


async def dead_ids(
    conn: AsyncConnection, *, since: datetime | None, project_id: int | None = None
) -> list[int]:
    query = sa.select(deliveries.c.id).where(deliveries.c.status == DEAD)
    if since is not None:
        query = query.where(deliveries.c.updated_at >= since)
    if project_id is not None:
        query = query.where(deliveries.c.project_id == project_id)
    return [int(r[0]) for r in await conn.execute(query.order_by(deliveries.c.id))]


async def requeue(conn: AsyncConnection, delivery_id: int, now: datetime) -> bool:
    """Queue a delivery again from the start of its project's chain (redelivery).
    False when it does not exist or the project has no enabled destination."""
    row = (
        await conn.execute(sa.select(deliveries.c.project_id).where(deliveries.c.id == delivery_id))
    ).first()
    if row is None:
        return False
    first = await next_in_chain(conn, row.project_id, -1)
    if first is None:
        return False
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id)
        .values(
            status=PENDING,
            destination_id=first.id,
            position=first.position,
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return True


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
    )
    return {str(s): int(n) for s, n in rows}


@dataclass(frozen=True)
class OutboxStats:
    counts: dict[str, int]
    oldest_due: datetime | None
    leased: int


async def outbox_stats(conn: AsyncConnection, now: datetime) -> OutboxStats:
    counts = await count_by_status(conn)
    oldest = (
        await conn.execute(
            sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
                deliveries.c.status.in_(DUE_STATUSES) & (deliveries.c.next_attempt_at <= now)
            )
        )
    ).scalar()
    leased = (
        await conn.execute(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.lease_expires_at > now)
        )
    ).scalar_one()
    return OutboxStats(counts, oldest if isinstance(oldest, datetime) else None, int(leased))


async def attempts_by_outcome(conn: AsyncConnection) -> dict[str, int]:
    """Recorded delivery attempts by outcome, over every worker process."""
    rows = await conn.execute(
        sa.select(delivery_attempts.c.outcome, sa.func.count()).group_by(
            delivery_attempts.c.outcome
        )
    )
    return {str(outcome): int(n) for outcome, n in rows}


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    """When the earliest pending/failed delivery becomes due (for the worker's sleep)."""
    value = (
        await conn.execute(
            sa.select(sa.func.min(deliveries.c.next_attempt_at)).where(
                deliveries.c.status.in_(DUE_STATUSES) & deliveries.c.lease_owner.is_(None)
            )
        )
    ).scalar()
    return value if isinstance(value, datetime) else None


async def find_signing_key(conn: AsyncConnection) -> str | None:
    row = (
        await conn.execute(
            sa.select(delivery_signing_keys.c.key).order_by(delivery_signing_keys.c.id).limit(1)
        )
    ).first()
    return str(row[0]) if row is not None else None


async def signing_key(conn: AsyncConnection, fresh: str) -> str:
    """The oldest link-signing key, creating one (``fresh``) when there is none."""
    row = (
        await conn.execute(
            sa.select(delivery_signing_keys.c.key).order_by(delivery_signing_keys.c.id).limit(1)
        )
    ).first()
    if row is not None:
        return str(row[0])
    await conn.execute(delivery_signing_keys.insert().values(key=fresh, created_at=utcnow()))
    return fresh
