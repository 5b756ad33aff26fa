"""Recording the delivery worker's finished attempts, as batch writer jobs: each attempt's
outcome, and each delivery moved on (delivered, retried later, passed to the next destination
of its chain, or dead).

The common outcomes (delivered, retry) are plain SQL (:mod:`~fieldreport.storage.plainsql`):
on SQLite one ``UPDATE ... FROM`` a ``VALUES`` list per table and kind of row (an
``executemany`` runs each row as a step of its own, and pysqlite releases and takes back the
GIL around each: while the event loop holds the GIL, the writer thread waited for it twice per
delivery); on PostgreSQL one ``executemany`` (asyncpg pipelines it). Giving up, which is rare,
stays in Core. Attempts are claimed, and their rows created, by
:mod:`~fieldreport.storage.outbox`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from fieldreport.storage.deliveries import DEAD, DELIVERED, FAILED
from fieldreport.storage.destinations import first_in_chain
from fieldreport.storage.plainsql import binder, execute, execute_many, padded, sqlite_values
from fieldreport.storage.schema.delivery import deliveries, delivery_attempts, destinations

_SQLITE_VERSION = sqlite3.sqlite_version_info


#: A claim given back unattempted (:class:`Finish` action): its attempt row is removed and its
#: lease released, as if it had not been claimed.
GIVE_BACK = "give_back"


@dataclass
class Finish:
    """The outcome of one attempt, as the worker records it (read-only; not frozen, which
    would cost ~600 instructions a field in ``__init__``, for each delivery)."""

    delivery_id: int
    attempt_id: int
    owner: str
    started_at: datetime
    duration_ms: int
    status_code: int | None
    response_excerpt: str
    error: str | None
    action: str  # delivered | retry | give_up (see delivery.policy) | give_back
    next_attempt_at: datetime | None = None
    disable_destination: bool = False
    reason: str = ""


_MOVE_ON = (
    "UPDATE deliveries SET status = ?, delivered_at = ?, next_attempt_at = ?, last_error = ?,"
    " last_status_code = ?, attempts = attempts + 1, total_attempts = total_attempts + 1,"
    " lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE id = ? AND lease_owner = ?"
)
_RECORD_ATTEMPT = (
    "UPDATE delivery_attempts SET started_at = ?, duration_ms = ?, status_code = ?,"
    " response_excerpt = ?, error = ?, outcome = ? WHERE id = ?"
)
# SQLite (3.33+): the same updates for many rows in one statement; the rows' values are the
# parameters of _MOVE_ON / _RECORD_ATTEMPT in the same order (updated_at is per row there).
_MOVE_ON_ROWS = (
    "status, delivered_at, next_attempt_at, last_error, last_status_code, updated_at, id, owner",
    "UPDATE deliveries SET status = v.status, delivered_at = v.delivered_at,"
    " next_attempt_at = v.next_attempt_at, last_error = v.last_error,"
    " last_status_code = v.last_status_code, attempts = attempts + 1,"
    " total_attempts = total_attempts + 1, lease_owner = NULL, lease_expires_at = NULL,"
    " updated_at = v.updated_at FROM v WHERE deliveries.id = v.id"
    " AND deliveries.lease_owner = v.owner",
)
_RECORD_ATTEMPT_ROWS = (
    "started_at, duration_ms, status_code, response_excerpt, error, outcome, id",
    "UPDATE delivery_attempts SET started_at = v.started_at, duration_ms = v.duration_ms,"
    " status_code = v.status_code, response_excerpt = v.response_excerpt, error = v.error,"
    " outcome = v.outcome FROM v WHERE delivery_attempts.id = v.id",
)
# The common case of each, its NULLs written in the statement rather than bound: pysqlite
# binds None through its adapter lookup (~3k instructions a value, an AttributeError raised
# and cleared inside), and a delivered attempt had three.
_DELIVERED_ROWS = (
    "at, last_status_code, id, owner",
    f"UPDATE deliveries SET status = '{DELIVERED}', delivered_at = v.at,"
    " next_attempt_at = NULL, last_error = NULL,"
    " last_status_code = v.last_status_code, attempts = attempts + 1,"
    " total_attempts = total_attempts + 1, lease_owner = NULL, lease_expires_at = NULL,"
    " updated_at = v.at FROM v WHERE deliveries.id = v.id"
    " AND deliveries.lease_owner = v.owner",
)
_RECORD_NO_ERROR_ROWS = (
    "started_at, duration_ms, status_code, response_excerpt, outcome, id",
    "UPDATE delivery_attempts SET started_at = v.started_at, duration_ms = v.duration_ms,"
    " status_code = v.status_code, response_excerpt = v.response_excerpt, error = NULL,"
    " outcome = v.outcome FROM v WHERE delivery_attempts.id = v.id",
)


def _values_update(conn: Connection) -> bool:
    """Whether ``UPDATE ... FROM`` a ``VALUES`` list is available (SQLite 3.33+)."""
    return conn.dialect.name == "sqlite" and _SQLITE_VERSION >= (3, 33)


def _update_values(conn: Connection, many: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
    """Run the UPDATE ``many`` (``WITH v(columns) AS (VALUES ...) UPDATE ... FROM v``) for
    ``rows``, a statement per 999 parameters (the rows padded to one of a few counts: see
    :func:`~fieldreport.storage.plainsql.padded`)."""
    if not rows:
        return
    columns, update = many
    for _, chunk, values in sqlite_values(padded(rows), len(rows[0])):
        params: list[Any] = []
        for row in chunk:
            params.extend(row)
        execute(conn, f"WITH v({columns}) AS (VALUES {values}) {update}", params)


def finish_sync(conn: Connection, items: list[Finish], now: datetime) -> None:
    """Record finished attempts and move each delivery on, in one transaction. A delivery
    whose lease was taken over meanwhile (its worker was presumed dead) only gets its
    attempt recorded. On SQLite 3.33+ one ``UPDATE ... FROM`` a ``VALUES`` list per table
    and kind of row; else an ``executemany`` per table."""
    if any(f.action == GIVE_BACK for f in items):
        _give_back(conn, [f for f in items if f.action == GIVE_BACK])
        items = [f for f in items if f.action != GIVE_BACK]
    dialect = conn.dialect
    stamp = binder(dialect, deliveries.c.updated_at)
    at = stamp(now)
    simple = [f for f in items if f.action in ("delivered", "retry")]
    many = _values_update(conn)
    if many:
        delivered = [
            (at, f.status_code, f.delivery_id, f.owner) for f in simple if f.action == "delivered"
        ]
        _update_values(conn, _DELIVERED_ROWS, delivered)
        _update_values(conn, _MOVE_ON_ROWS, [_move_on(f, at, stamp) for f in simple
                                             if f.action == "retry"])  # fmt: skip
    elif simple:
        execute_many(conn, _MOVE_ON, [_move_on(f, at, stamp) for f in simple])
    outcomes = {f.attempt_id: f.action for f in simple}
    for f in items:
        if f.action in ("delivered", "retry"):
            continue
        outcomes[f.attempt_id] = _give_up(conn, f, now)
    attempts = [
        (stamp(f.started_at), f.duration_ms, f.status_code, f.response_excerpt[:2000], f.error,
         outcomes[f.attempt_id], f.attempt_id)
        for f in items
    ]  # fmt: skip
    if not many:
        if attempts:
            execute_many(conn, _RECORD_ATTEMPT, attempts)
        return
    _update_values(conn, _RECORD_ATTEMPT_ROWS, [r for r in attempts if r[4] is not None])
    _update_values(
        conn,
        _RECORD_NO_ERROR_ROWS,
        [(s, d, c, e, o, i) for s, d, c, e, err, o, i in attempts if err is None],
    )


def _move_on(f: Finish, at: Any, stamp: Callable[[Any], Any]) -> tuple[Any, ...]:
    """A delivered or retried delivery's row of _MOVE_ON's (and _MOVE_ON_ROWS') values."""
    if f.action == "delivered":
        return (DELIVERED, at, None, None, f.status_code, at, f.delivery_id, f.owner)
    next_at = stamp(f.next_attempt_at)
    return (FAILED, None, next_at, f.error, f.status_code, at, f.delivery_id, f.owner)


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


def _give_back(conn: Connection, items: list[Finish]) -> None:
    """Claims given back unattempted (rare: a circuit opened while they were queued)."""
    conn.execute(
        delivery_attempts.delete().where(
            delivery_attempts.c.id.in_([f.attempt_id for f in items])
            & (delivery_attempts.c.outcome == "in_flight")
        )
    )
    for owner in {f.owner for f in items}:
        conn.execute(
            deliveries.update()
            .where(
                deliveries.c.id.in_([f.delivery_id for f in items if f.owner == owner])
                & (deliveries.c.lease_owner == owner)
            )
            .values(lease_owner=None, lease_expires_at=None)
        )


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
