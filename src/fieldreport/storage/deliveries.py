"""Queries on the delivery outbox: enqueueing, claiming with leases, recording attempts,
inspection and redelivery.

Statuses: ``pending`` (not tried yet, or queued again for redelivery), ``failed`` (the last
attempt failed; another is scheduled), ``delivered``, ``dead`` (every destination of the
chain exhausted; kept for ``fieldreport delivery retry``). A claimed delivery carries a
lease (owner + expiry) that its worker renews; when a worker dies the lease runs out and
any other worker takes the delivery over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.bulk import insert_ids
from fieldreport.storage.destinations import (
    Destination,
    destination_from,
    first_in_chain,
    next_in_chain,
)
from fieldreport.storage.reports import Report, get_reports
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.core import projects, reports
from fieldreport.storage.schema.delivery import (
    deliveries,
    delivery_attempts,
    delivery_signing_keys,
    destinations,
)

PENDING, FAILED, DELIVERED, DEAD = "pending", "failed", "delivered", "dead"
STATUSES = (PENDING, FAILED, DELIVERED, DEAD)
DUE_STATUSES = (PENDING, FAILED)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    report_id: str
    project_id: int
    destination: Destination | None  # None: removed or disabled since (the worker moves on)
    attempts: int  # already made on this destination (abandoned ones included)
    position: int
    #: attempts on this destination whose worker stopped before finishing (lease expired)
    abandoned: int = 0


@dataclass(frozen=True)
class Finish:
    """The outcome of one attempt, as the worker records it."""

    delivery_id: int
    attempt_id: int
    owner: str
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_excerpt: str
    error: str | None
    action: str  # delivered | retry | give_up (see delivery.policy)
    next_attempt_at: datetime | None = None
    disable_destination: bool = False
    reason: str = ""


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


def enqueue_reports(conn: Connection, rows: list[tuple[str, int, datetime]]) -> list[int | None]:
    """Add each ``(report id, project id, arrival time)``'s delivery row in the caller's
    transaction (the one that inserts the reports), in one statement. Returns their ids, or
    None for a report whose project has no enabled destination."""
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
        conn.exec_driver_sql("NOTIFY fieldreport_deliveries")
    return [next(ids) if first is not None else None for _, first, _ in wanted]


async def enqueue_report(
    conn: AsyncConnection, *, report_id: str, project_id: int, now: datetime
) -> int | None:
    """:func:`enqueue_reports` for one report, on an async connection."""
    return (await conn.run_sync(enqueue_reports, [(report_id, project_id, now)]))[0]


def claim_due_sync(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease: float,
    limit: int,
    room: dict[int, int] | None = None,
    default_room: int = 1 << 30,
    label: Callable[[str], str] = lambda url: url,
) -> list[Claim]:
    """Claim up to ``limit`` due deliveries for ``owner`` (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, so concurrent workers never claim the same row; SQLite's single writer makes
    the transaction exclusive). ``room`` caps how many more may start per destination id
    (concurrency limits, open circuits = 0). An attempt row is opened for each claim.
    Synchronous, so that the worker's claim runs as a batch writer job (on SQLite: one
    thread hop for the whole transaction, where an async connection costs one per
    statement)."""
    if limit <= 0:
        return []
    room = dict(room or {})
    blocked = [dest for dest, n in room.items() if n <= 0]
    cond = (
        deliveries.c.status.in_(DUE_STATUSES)
        & (deliveries.c.next_attempt_at <= now)
        & (deliveries.c.lease_expires_at.is_(None) | (deliveries.c.lease_expires_at < now))
    )
    if blocked:
        cond = cond & (
            deliveries.c.destination_id.is_(None) | deliveries.c.destination_id.not_in(blocked)
        )
    query = (
        sa.select(
            deliveries.c.id,
            deliveries.c.report_id,
            deliveries.c.project_id,
            deliveries.c.destination_id,
            deliveries.c.attempts,
            deliveries.c.position,
            deliveries.c.lease_owner,
        )
        .where(cond)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit * 2)
        .with_for_update(skip_locked=True)
    )
    rows = (conn.execute(query)).all()
    picked: list[Any] = []
    for row in rows:
        dest = row.destination_id
        if dest is not None:
            left = room.get(dest, default_room)
            if left <= 0:
                continue
            room[dest] = left - 1
        picked.append(row)
        if len(picked) >= limit:
            break
    if not picked:
        return []
    ids = [r.id for r in picked]
    taken_over = [r.id for r in picked if r.lease_owner is not None]
    abandoned = _abandon(conn, picked, taken_over, now) if taken_over else {}
    conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(ids))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease))
    )
    dest_ids = sorted({r.destination_id for r in picked if r.destination_id is not None})
    dests: dict[int, Destination] = {}
    if dest_ids:
        for d in conn.execute(sa.select(destinations).where(destinations.c.id.in_(dest_ids))):
            dests[d.id] = destination_from(d._mapping)
    labels: dict[int, str] = {}
    attempt_rows = []
    for r in picked:
        dest_obj = dests.get(r.destination_id) if r.destination_id is not None else None
        shown = "(destination removed)"
        if dest_obj is not None:
            if dest_obj.id not in labels:
                labels[dest_obj.id] = label(dest_obj.url)
            shown = labels[dest_obj.id]
        attempt_rows.append(
            {
                "delivery_id": r.id,
                "destination_id": r.destination_id,
                "destination": shown,
                "worker": owner,
                "started_at": now,
                "outcome": "in_flight",
                "response_excerpt": "",
            }
        )
    result = conn.execute(
        delivery_attempts.insert().returning(
            delivery_attempts.c.id, delivery_attempts.c.delivery_id
        ),
        attempt_rows,
    )
    attempt_ids = {row.delivery_id: row.id for row in result}
    claims = []
    for r in picked:
        dest_obj = dests.get(r.destination_id) if r.destination_id is not None else None
        if dest_obj is not None and not dest_obj.enabled:
            dest_obj = None
        claims.append(
            Claim(
                delivery_id=r.id,
                attempt_id=attempt_ids[r.id],
                report_id=r.report_id,
                project_id=r.project_id,
                destination=dest_obj,
                attempts=r.attempts + (1 if r.id in abandoned else 0),
                position=r.position,
                abandoned=abandoned.get(r.id, 0),
            )
        )
    return claims


@dataclass(frozen=True)
class ClaimRequest:
    """One worker's claim, as a batch writer item (see :func:`claim_and_load`)."""

    owner: str
    now: datetime
    lease: float
    limit: int
    room: dict[int, int]
    default_room: int
    label: Callable[[str], str]


def claim_and_load(
    conn: Connection, requests: list[ClaimRequest]
) -> list[tuple[list[Claim], dict[str, Report]]]:
    """Batch writer job: each request's claims and the stored reports they push, read in the
    claim's transaction (no second round trip for the reports)."""
    out = []
    for req in requests:
        claims = claim_due_sync(
            conn,
            owner=req.owner,
            now=req.now,
            lease=req.lease,
            limit=req.limit,
            room=req.room,
            default_room=req.default_room,
            label=req.label,
        )
        reports = get_reports(conn, [c.report_id for c in claims]) if claims else {}
        out.append((claims, reports))
    return out


ABANDONED_ERROR = "the worker stopped before finishing (lease expired)"


def _abandon(
    conn: Connection, picked: list[Any], taken_over: list[int], now: datetime
) -> dict[int, int]:
    """Deliveries taken over from a worker whose lease ran out: its attempt is recorded as
    ``abandoned`` and counts as an attempt (so the retry schedule moves on and a report that
    keeps killing workers is eventually given up). Returns, per delivery, how many attempts
    on its current destination were abandoned in a row, up to now."""
    conn.execute(
        delivery_attempts.update()
        .where(
            delivery_attempts.c.delivery_id.in_(taken_over)
            & (delivery_attempts.c.outcome == "in_flight")
        )
        .values(outcome="abandoned", error=ABANDONED_ERROR)
    )
    conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(taken_over))
        .values(
            attempts=deliveries.c.attempts + 1,
            total_attempts=deliveries.c.total_attempts + 1,
            last_error=ABANDONED_ERROR,
            updated_at=now,
        )
    )
    # The streak of abandoned attempts on the current destination, newest first: any other
    # outcome (a recorded failure, a redelivery's fresh start) ends it.
    current = {r.id: r.destination_id for r in picked}
    counts: dict[int, int] = dict.fromkeys(taken_over, 0)
    ended: set[int] = set()
    rows = conn.execute(
        sa.select(
            delivery_attempts.c.delivery_id,
            delivery_attempts.c.destination_id,
            delivery_attempts.c.outcome,
        )
        .where(delivery_attempts.c.delivery_id.in_(taken_over))
        .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.id.desc())
    )
    for delivery_id, destination_id, outcome in rows:
        if delivery_id in ended:
            continue
        if outcome == "abandoned" and destination_id == current[delivery_id]:
            counts[delivery_id] += 1
        else:
            ended.add(delivery_id)
    return counts


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


def finish_sync(conn: Connection, items: list[Finish], now: datetime) -> None:
    """Record finished attempts and move each delivery on, in one transaction. A delivery
    whose lease was taken over meanwhile (its worker was presumed dead) only gets its
    attempt recorded."""
    simple = [f for f in items if f.action in ("delivered", "retry")]
    if simple:
        conn.execute(
            deliveries.update()
            .where(
                (deliveries.c.id == sa.bindparam("_id"))
                & (deliveries.c.lease_owner == sa.bindparam("_owner"))
            )
            .values(
                status=sa.bindparam("_status"),
                delivered_at=sa.bindparam("_delivered_at"),
                next_attempt_at=sa.bindparam("_next"),
                last_error=sa.bindparam("_error"),
                last_status_code=sa.bindparam("_code"),
                attempts=deliveries.c.attempts + 1,
                total_attempts=deliveries.c.total_attempts + 1,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            ),
            [
                {
                    "_id": f.delivery_id,
                    "_owner": f.owner,
                    "_status": DELIVERED if f.action == "delivered" else FAILED,
                    "_delivered_at": now if f.action == "delivered" else None,
                    "_next": f.next_attempt_at if f.action == "retry" else None,
                    "_error": f.error if f.action != "delivered" else None,
                    "_code": f.status_code,
                }
                for f in simple
            ],
        )
    outcomes = {f.attempt_id: f.action for f in simple}
    for f in items:
        if f.action in ("delivered", "retry"):
            continue
        outcomes[f.attempt_id] = _give_up(conn, f, now)
    conn.execute(
        delivery_attempts.update()
        .where(delivery_attempts.c.id == sa.bindparam("_id"))
        .values(
            started_at=sa.bindparam("_started"),
            duration_ms=sa.bindparam("_duration"),
            status_code=sa.bindparam("_code"),
            response_excerpt=sa.bindparam("_excerpt"),
            error=sa.bindparam("_error"),
            outcome=sa.bindparam("_outcome"),
        ),
        [
            {
                "_id": f.attempt_id,
                "_started": f.started_at,
                "_duration": f.duration_ms,
                "_code": f.status_code,
                "_excerpt": f.response_excerpt[:2000],
                "_error": f.error,
                "_outcome": outcomes[f.attempt_id],
            }
            for f in items
        ],
    )


@dataclass(frozen=True)
class Finished:
    """Attempts one worker finished, as a batch writer item (see :func:`record_finished`)."""

    items: list[Finish]
    now: datetime


def record_finished(conn: Connection, batches: list[Finished]) -> list[None]:
    """Batch writer job: record finished attempts (one worker's batch each)."""
    for batch in batches:
        finish_sync(conn, batch.items, batch.now)
    return [None] * len(batches)


def _give_up(conn: Connection, f: Finish, now: datetime) -> str:
    """Move a delivery to the next destination of its chain, or mark it dead."""
    row = (
        conn.execute(
            sa.select(
                deliveries.c.lease_owner,
                deliveries.c.project_id,
                deliveries.c.position,
                deliveries.c.destination_id,
            ).where(deliveries.c.id == f.delivery_id)
        )
    ).first()
    if row is None or row.lease_owner != f.owner:
        return "next"
    if f.disable_destination and row.destination_id is not None:
        conn.execute(
            destinations.update()
            .where(destinations.c.id == row.destination_id)
            .values(enabled=False, disabled_reason=f.reason)
        )
    values: dict[str, Any] = {
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": f.error,
        "last_status_code": f.status_code,
        "total_attempts": deliveries.c.total_attempts + 1,
    }
    nxt = first_in_chain(conn, row.project_id, after_position=row.position)
    if nxt is None:
        outcome = "dead"
        values.update(status=DEAD, next_attempt_at=None, attempts=deliveries.c.attempts + 1)
    else:
        outcome = "next"
        values.update(
            status=FAILED,
            destination_id=nxt.id,
            position=nxt.position,
            attempts=0,
            next_attempt_at=now,
        )
    conn.execute(deliveries.update().where(deliveries.c.id == f.delivery_id).values(**values))
    return outcome


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
