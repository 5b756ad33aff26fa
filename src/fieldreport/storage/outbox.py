"""The delivery worker's side of the outbox: claiming due deliveries with leases (and loading
the reports they push), as batch writer jobs; :mod:`~fieldreport.storage.attempt_records`
records the finished attempts. While busy, the worker does both in one job and transaction
(:func:`record_and_claim`): one commit, one thread hop and one savepoint per turn instead of
two.

These run for every delivery, so the common statements are plain SQL
(:mod:`~fieldreport.storage.plainsql`): measured on the delivery benchmark (SQLite, 64 at a
time), Core statement building and row processing cost the writer thread ~290 µs per
delivery. The rare paths (a delivery taken over from a dead worker, a destination given up)
stay in Core. Statuses and leases are described in :mod:`~fieldreport.storage.deliveries`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from fieldreport.storage.attempt_records import Finished, finish_sync
from fieldreport.storage.bulk import RowInsert
from fieldreport.storage.destinations import Destination, destination_from
from fieldreport.storage.plainsql import (
    binder,
    execute,
    in_list,
    not_in_list,
    rows,
    select_list,
)
from fieldreport.storage.reports import Report, get_reports
from fieldreport.storage.schema.delivery import deliveries, delivery_attempts, destinations


@dataclass
class Claim:
    """A claimed delivery (read-only; not frozen, which would cost ~600 instructions a
    field in ``__init__``, for each delivery)."""

    delivery_id: int
    attempt_id: int
    report_id: str
    project_id: int
    destination: Destination | None  # None: removed or disabled since (the worker moves on)
    attempts: int  # already made on this destination (abandoned ones included)
    position: int
    #: attempts on this destination whose worker stopped before finishing (lease expired)
    abandoned: int = 0


# --- claiming -------------------------------------------------------------------------------

_DUE = (
    "SELECT id, report_id, project_id, destination_id, attempts, position, lease_owner"
    " FROM deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= ?"
    " AND (lease_expires_at IS NULL OR lease_expires_at < ?)"
)
_DESTINATION_COLUMNS = tuple(destinations.c)
_DESTINATIONS = f"SELECT {select_list(_DESTINATION_COLUMNS)} FROM destinations WHERE id "
_LEASE = "UPDATE deliveries SET lease_owner = ?, lease_expires_at = ? WHERE id "
_INSERT_ATTEMPTS = RowInsert(
    delivery_attempts,
    ("delivery_id", "destination_id", "destination", "worker", "started_at", "outcome",
     "response_excerpt"),
)  # fmt: skip


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
    dialect = conn.dialect
    room = dict(room or {})
    blocked = [dest for dest, n in room.items() if n <= 0]
    stamp = binder(dialect, deliveries.c.next_attempt_at)
    at = stamp(now)
    sql, params = _DUE, (at, at)
    if blocked:
        fragment, values = not_in_list(dialect, blocked)
        sql, params = (
            f"{sql} AND (destination_id IS NULL OR destination_id {fragment})",
            (
                *params,
                *values,
            ),
        )
    sql += " ORDER BY next_attempt_at, id LIMIT ?"
    if dialect.name == "postgresql":
        sql += " FOR UPDATE SKIP LOCKED"
    # Extra rows only when some could be skipped (a destination with less room than the
    # limit): reading and converting rows costs per row, and a busy worker claims often.
    can_skip = default_room < limit or any(0 < n < limit for n in room.values())
    due = execute(conn, sql, (*params, limit * 2 if can_skip else limit)).fetchall()
    picked: list[Any] = []
    for row in due:
        dest = row[3]
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
    # row: id, report_id, project_id, destination_id, attempts, position, lease_owner
    ids = [r[0] for r in picked]
    taken_over = [r[0] for r in picked if r[6] is not None]
    abandoned = _abandon(conn, picked, taken_over, now) if taken_over else {}
    fragment, values = in_list(dialect, ids)
    execute(
        conn,
        _LEASE + fragment,
        (owner, binder(dialect, deliveries.c.lease_expires_at)(now + timedelta(seconds=lease)),
         *values),
    )  # fmt: skip
    dests = _destinations(conn, sorted({r[3] for r in picked if r[3] is not None}))
    labels: dict[int, str] = {}
    started = binder(dialect, delivery_attempts.c.started_at)(now)
    attempt_rows = []
    for r in picked:
        dest_obj = dests.get(r[3]) if r[3] is not None else None
        shown = "(destination removed)"
        if dest_obj is not None:
            if dest_obj.id not in labels:
                labels[dest_obj.id] = label(dest_obj.url)
            shown = labels[dest_obj.id]
        attempt_rows.append((r[0], r[3], shown, owner, started, "in_flight", ""))
    attempt_ids = _INSERT_ATTEMPTS.ids(conn, attempt_rows)
    claims = []
    for r, attempt_id in zip(picked, attempt_ids, strict=True):
        dest_obj = dests.get(r[3]) if r[3] is not None else None
        if dest_obj is not None and not dest_obj.enabled:
            dest_obj = None
        # Positional (the fields' order): keyword arguments cost ~2x as much, per claim.
        claims.append(
            Claim(r[0], attempt_id, r[1], r[2], dest_obj,
                  r[4] + 1 if r[0] in abandoned else r[4], r[5], abandoned.get(r[0], 0))
        )  # fmt: skip
    return claims


def _destinations(conn: Connection, ids: list[int]) -> dict[int, Destination]:
    """The destinations of a claimed batch (read again at each claim: one may have been
    changed or disabled meanwhile)."""
    if not ids:
        return {}
    fragment, values = in_list(conn.dialect, ids)
    names = [c.name for c in _DESTINATION_COLUMNS]
    found = {}
    cursor = execute(conn, _DESTINATIONS + fragment, values)
    for row in rows(conn.dialect, cursor, _DESTINATION_COLUMNS):
        dest = destination_from(dict(zip(names, row, strict=True)))
        found[dest.id] = dest
    return found


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


@dataclass(frozen=True)
class Turn:
    """A busy worker's turn, as a batch writer item (see :func:`record_and_claim`): the
    attempts that finished since its last turn, and its claim, if it has room (a turn with
    nothing finished is a plain claim: :func:`claim_and_load`)."""

    finished: Finished
    claim: ClaimRequest | None


def record_and_claim(
    conn: Connection, turns: list[Turn]
) -> list[tuple[list[Claim], dict[str, Report]]]:
    """Batch writer job: record each turn's finished attempts (as
    :func:`~fieldreport.storage.attempt_records.record_finished`), then claim and load (as
    :func:`claim_and_load`), in the caller's one transaction. A delivery recorded for a retry
    that is due at once may be claimed again by the same turn."""
    out: list[tuple[list[Claim], dict[str, Report]]] = []
    for turn in turns:
        finish_sync(conn, turn.finished.items, turn.finished.now)
        out.append(claim_and_load(conn, [turn.claim])[0] if turn.claim is not None else ([], {}))
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
    current = {r[0]: r[3] for r in picked}
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
