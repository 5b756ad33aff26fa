"""Queries on destinations: each project's ordered chain (primary first, then backups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.delivery import destinations


@dataclass(frozen=True)
class Destination:
    id: int
    project_id: int
    position: int
    url: str  # may carry credentials: print redact_url(url), never url
    format: str
    token: str | None
    secret: str | None
    headers: list[tuple[str, str]]
    retry_schedule: list[float]
    timeout: float
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class NewDestination:
    url: str
    format: str
    token: str | None = None
    secret: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    retry_schedule: list[float] = field(default_factory=list)
    timeout: float = 15.0


def destination_from(m: Any) -> Destination:
    return Destination(
        id=m["id"],
        project_id=m["project_id"],
        position=m["position"],
        url=m["url"],
        format=m["format"],
        token=m["token"],
        secret=m["secret"],
        headers=[(str(k), str(v)) for k, v in (m["headers"] or [])],
        retry_schedule=[float(x) for x in m["retry_schedule"]],
        timeout=float(m["timeout"]),
        enabled=bool(m["enabled"]),
        disabled_reason=m["disabled_reason"],
        created_at=m["created_at"],
    )


async def chain(conn: AsyncConnection, project_id: int) -> list[Destination]:
    """The project's destinations, primary first."""
    rows = await conn.execute(
        sa.select(destinations)
        .where(destinations.c.project_id == project_id)
        .order_by(destinations.c.position, destinations.c.id)
    )
    return [destination_from(r._mapping) for r in rows]


async def add_destination(
    conn: AsyncConnection, project_id: int, new: NewDestination, *, backup: bool
) -> Destination:
    """Append a backup (or the primary, when the chain is empty). Raises ValueError when a
    primary is asked for but the project already has one."""
    existing = await chain(conn, project_id)
    if existing and not backup:
        raise ValueError(
            f"the project already has a primary destination (#{existing[0].id}); "
            "add this one with --backup, or remove the primary first"
        )
    position = existing[-1].position + 1 if existing else 0
    result = await conn.execute(
        destinations.insert()
        .values(
            project_id=project_id,
            position=position,
            url=new.url,
            format=new.format,
            token=new.token,
            secret=new.secret,
            headers=[list(h) for h in new.headers],
            retry_schedule=list(new.retry_schedule),
            timeout=new.timeout,
            enabled=True,
            created_at=utcnow(),
        )
        .returning(*destinations.c)
    )
    return destination_from(result.one()._mapping)


async def get_destination(conn: AsyncConnection, destination_id: int) -> Destination | None:
    row = (
        await conn.execute(sa.select(destinations).where(destinations.c.id == destination_id))
    ).first()
    return destination_from(row._mapping) if row else None


async def remove_destination(conn: AsyncConnection, destination_id: int) -> bool:
    result = await conn.execute(destinations.delete().where(destinations.c.id == destination_id))
    return bool(result.rowcount)


async def set_enabled(
    conn: AsyncConnection, destination_id: int, enabled: bool, reason: str | None = None
) -> None:
    await conn.execute(
        destinations.update()
        .where(destinations.c.id == destination_id)
        .values(enabled=enabled, disabled_reason=None if enabled else reason)
    )


def _chain_query(project_id: Any, after_position: Any) -> sa.Select[Any]:
    return (
        sa.select(destinations)
        .where(
            (destinations.c.project_id == project_id)
            & (destinations.c.position > after_position)
            & destinations.c.enabled
        )
        .order_by(destinations.c.position, destinations.c.id)
        .limit(1)
    )


async def next_in_chain(
    conn: AsyncConnection, project_id: int, after_position: int
) -> Destination | None:
    """The first enabled destination after ``after_position`` (-1: from the start)."""
    row = (await conn.execute(_chain_query(project_id, after_position))).first()
    return destination_from(row._mapping) if row else None


# Built once: the batch writer runs it in every transaction of reports and every claim of
# the delivery worker, and building the statement cost more than running it.
_FIRST_IN_CHAIN = _chain_query(sa.bindparam("chain_of"), sa.bindparam("chain_after"))


def first_in_chain(
    conn: Connection, project_id: int, *, after_position: int = -1
) -> Destination | None:
    """The project's first enabled destination, or the first after ``after_position``
    (synchronous, for the batch writer)."""
    row = conn.execute(
        _FIRST_IN_CHAIN, {"chain_of": project_id, "chain_after": after_position}
    ).first()
    return destination_from(row._mapping) if row else None
