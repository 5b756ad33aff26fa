"""Writing accepted reports: each report's rows and its outbox row, many reports per commit.

:func:`write_reports` is the batch writer's job for reports (:mod:`fieldreport.storage.writer`):
concurrent reports share one transaction and multi-row statements, with one ticket-counter
update per project. With SQLite's single writer and ``synchronous=FULL`` every commit costs a
device flush, and on PostgreSQL the ticket counter's row lock is held until commit, so one
transaction per report would cap intake at the commit rate. Each caller is answered only
after the commit that holds its rows.

The request path finds a report's project through a short-lived cache of public keys
(:mod:`fieldreport.ingest.report_keys`); the transaction confirms it before inserting, in
one statement for the whole batch, so a rotated key or a removed origin stops working at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from fieldreport.storage.deliveries import PG_FIRSTS, enqueue_reports, pg_projects
from fieldreport.storage.projects import public_key_holders
from fieldreport.storage.reports import NewReport, insert_reports, pg_insert_reports

__all__ = ["NewReport", "WrittenReport", "write_reports"]

#: Why a report was not written: its key no longer belongs to its project, or the project no
#: longer allows the request's origin.
Refusal = Literal["key", "origin"]


@dataclass(frozen=True)
class WrittenReport:
    ticketnr: int
    delivery_id: int | None  # None when the project has no enabled destination
    refused: Refusal | None = None  # set: nothing of this report was written


def write_reports(conn: Connection, rows: list[NewReport]) -> list[WrittenReport]:
    """Insert reports, their files and their delivery rows in the caller's transaction,
    except those whose key or origin no longer holds (answered ``refused``)."""
    refusals = _refusals(conn, rows)
    kept = [row for row, refused in zip(rows, refusals, strict=True) if refused is None]
    written = iter(_write(conn, kept) if kept else [])
    return [
        next(written) if refused is None else WrittenReport(0, None, refused)
        for refused in refusals
    ]


def _write(conn: Connection, rows: list[NewReport]) -> list[WrittenReport]:
    outbox = [(r.report_id, r.project_id, r.created_at) for r in rows]
    if conn.dialect.driver == "psycopg":  # the batch writer on PostgreSQL: see _pg_write
        return _pg_write(conn, rows, outbox)
    ticketnrs = insert_reports(conn, rows)
    # The delivery outbox: its rows commit atomically with the reports.
    delivery_ids = enqueue_reports(conn, outbox)
    return [WrittenReport(t, d) for t, d in zip(ticketnrs, delivery_ids, strict=True)]


_PG_FIRSTS = PG_FIRSTS.format(param=3)


def _pg_write(
    conn: Connection, rows: list[NewReport], outbox: list[tuple[str, int, datetime]]
) -> list[WrittenReport]:
    """:func:`_write` on libpq: the reports, their files and their projects' first
    destinations in one statement (:func:`pg_insert_reports`), then the delivery rows
    (:func:`enqueue_reports` given them): with the ticket update, the key check, the
    savepoint and the commit, five round trips per transaction of reports (seven with
    delivery rows), where separate statements took seven (nine)."""
    ticketnrs, firsts = pg_insert_reports(conn, rows, _PG_FIRSTS, [pg_projects(outbox)])
    delivery_ids = enqueue_reports(conn, outbox, pg_firsts=firsts)
    return [WrittenReport(t, d) for t, d in zip(ticketnrs, delivery_ids, strict=True)]


def _refusals(conn: Connection, rows: list[NewReport]) -> list[Refusal | None]:
    holders = public_key_holders(conn, (r.key_hash for r in rows if r.key_hash is not None))
    refusals: list[Refusal | None] = []
    for row in rows:
        if row.key_hash is None:
            refusals.append(None)
            continue
        holder = holders.get(row.key_hash)
        if holder is None or holder[0] != row.project_id:
            refusals.append("key")
        elif row.origin is not None and not _allows(holder[1], row.origin):
            refusals.append("origin")
        else:
            refusals.append(None)
    return refusals


def _allows(origins: set[str], origin: str) -> bool:
    """``fieldreport.ingest.cors.origin_allowed`` for an origin the request did send."""
    return "*" in origins or origin in origins
