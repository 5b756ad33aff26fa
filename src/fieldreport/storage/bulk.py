"""Multi-row inserts that return the new rows' ids, in order, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection


def insert_ids(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table`` (integer primary key ``id``) in one statement and
    return their ids in the order of ``rows``."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        # SQLite has one writer at a time (BEGIN IMMEDIATE), so the next ids are known; and
        # executemany without RETURNING is one call, where RETURNING in a defined order
        # would cost one statement per row.
        top = conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
        first = int(top.scalar_one()) + 1
        ids = list(range(first, first + len(rows)))
        conn.execute(table.insert(), [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids
    result = conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows)
    return [int(r[0]) for r in result]
