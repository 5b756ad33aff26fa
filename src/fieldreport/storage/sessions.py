"""Queries on session recordings: sessions, mobile images, retention (batches: session_batches)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.schema.core import projects, reports
from fieldreport.storage.schema.sessions import session_batches, session_images, sessions


@dataclass(frozen=True)
class NewSession:
    id: str
    project_id: int
    platform: str
    user_uuid: str
    started_at: datetime
    tracker_version: str = ""
    rev_id: str = ""
    user_os_version: str = ""
    user_device: str = ""
    user_device_type: int | None = None
    user_agent: str = ""
    performance: Any = None


@dataclass(frozen=True)
class Session:
    id: str
    project_id: int
    project_name: str
    platform: str
    user_uuid: str
    tracker_version: str
    rev_id: str
    user_os_version: str
    user_device: str
    user_device_type: int | None
    user_agent: str
    performance: Any
    started_at: datetime
    first_batch_at: datetime | None
    last_batch_at: datetime | None
    batch_count: int
    byte_count: int


@dataclass(frozen=True)
class LinkedReport:
    reportid: str
    ticketnr: int
    created_at: datetime


async def insert_session(conn: AsyncConnection, new: NewSession) -> None:
    await conn.execute(
        sessions.insert().values(
            id=new.id,
            project_id=new.project_id,
            platform=new.platform,
            user_uuid=new.user_uuid,
            tracker_version=new.tracker_version,
            rev_id=new.rev_id,
            user_os_version=new.user_os_version,
            user_device=new.user_device,
            user_device_type=new.user_device_type,
            user_agent=new.user_agent,
            performance=new.performance,
            started_at=new.started_at,
            batch_count=0,
            byte_count=0,
        )
    )


#: A session's columns and its project's name (a session as the API and dashboard show it).
_SESSION_COLUMNS = (*sessions.c, projects.c.name.label("project_name"))


def _to_session(row: Any) -> Session:
    m = row._mapping
    return Session(
        id=m["id"],
        project_id=m["project_id"],
        project_name=m["project_name"],
        platform=m["platform"],
        user_uuid=m["user_uuid"],
        tracker_version=m["tracker_version"],
        rev_id=m["rev_id"],
        user_os_version=m["user_os_version"],
        user_device=m["user_device"],
        user_device_type=m["user_device_type"],
        user_agent=m["user_agent"],
        performance=m["performance"],
        started_at=m["started_at"],
        first_batch_at=m["first_batch_at"],
        last_batch_at=m["last_batch_at"],
        batch_count=m["batch_count"],
        byte_count=m["byte_count"],
    )


def _joined() -> sa.Select[Any]:
    return sa.select(*_SESSION_COLUMNS).select_from(
        sessions.join(projects, projects.c.id == sessions.c.project_id)
    )


async def get_session(conn: AsyncConnection, session_id: str) -> Session | None:
    row = (await conn.execute(_joined().where(sessions.c.id == session_id))).first()
    return _to_session(row) if row is not None else None


async def list_sessions(
    conn: AsyncConnection,
    *,
    project_id: int | None,
    limit: int = 50,
    before: datetime | None = None,
) -> list[Session]:
    """Newest first; ``before`` pages by start time."""
    query = _joined().order_by(sessions.c.started_at.desc(), sessions.c.id.desc()).limit(limit)
    if project_id is not None:
        query = query.where(sessions.c.project_id == project_id)
    if before is not None:
        query = query.where(sessions.c.started_at < before)
    return [_to_session(r) for r in await conn.execute(query)]


async def reports_naming_session(
    conn: AsyncConnection, project_id: int, session_id: str
) -> list[LinkedReport]:
    """The project's reports whose ``recording`` is this session."""
    rows = await conn.execute(
        sa.select(reports.c.id, reports.c.ticketnr, reports.c.created_at)
        .where((reports.c.project_id == project_id) & (reports.c.recording == session_id))
        .order_by(reports.c.ticketnr)
    )
    return [LinkedReport(*r) for r in rows]


# --- mobile images ------------------------------------------------------------------------


async def popular_image_hashes(conn: AsyncConnection, project_id: int, limit: int) -> list[str]:
    rows = await conn.execute(
        sa.select(session_images.c.hash)
        .where(session_images.c.project_id == project_id)
        .order_by(session_images.c.use_count.desc(), session_images.c.last_used_at.desc())
        .limit(limit)
    )
    return [r[0] for r in rows]


async def known_image_hashes(conn: AsyncConnection, project_id: int, hashes: list[str]) -> set[str]:
    if not hashes:
        return set()
    rows = await conn.execute(
        sa.select(session_images.c.hash).where(
            (session_images.c.project_id == project_id) & session_images.c.hash.in_(hashes)
        )
    )
    return {r[0] for r in rows}


async def record_image(
    conn: AsyncConnection,
    *,
    project_id: int,
    hash: str,
    size: int,
    content_type: str,
    blob_key: str,
    now: datetime,
) -> None:
    """Add an image, or count one more use of an image the project already has."""
    values = {
        "project_id": project_id,
        "hash": hash,
        "size": size,
        "content_type": content_type,
        "blob_key": blob_key,
        "use_count": 1,
        "created_at": now,
        "last_used_at": now,
    }
    bump = {"use_count": session_images.c.use_count + 1, "last_used_at": now}
    if conn.dialect.name == "postgresql":
        pg_stmt = postgresql.insert(session_images).values(**values)
        await conn.execute(
            pg_stmt.on_conflict_do_update(index_elements=["project_id", "hash"], set_=bump)
        )
    else:
        lite_stmt = sqlite.insert(session_images).values(**values)
        await conn.execute(
            lite_stmt.on_conflict_do_update(index_elements=["project_id", "hash"], set_=bump)
        )


async def get_image(conn: AsyncConnection, project_id: int, hash: str) -> tuple[str, str] | None:
    """``(blob_key, content_type)`` of a project's image."""
    row = (
        await conn.execute(
            sa.select(session_images.c.blob_key, session_images.c.content_type).where(
                (session_images.c.project_id == project_id) & (session_images.c.hash == hash)
            )
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


# --- retention ----------------------------------------------------------------------------


def _last_activity() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sessions.c.last_batch_at, sessions.c.started_at)


async def sessions_inactive_since(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[str]:
    """Ids of sessions whose last batch (or start) is older than ``cutoff``."""
    rows = await conn.execute(
        sa.select(sessions.c.id)
        .where(_last_activity() < cutoff)
        .order_by(_last_activity(), sessions.c.id)
        .limit(limit)
    )
    return [r[0] for r in rows]


async def count_inactive_since(conn: AsyncConnection, cutoff: datetime) -> tuple[int, int, int]:
    """``(sessions, batches, bytes)`` that a collection with ``cutoff`` would remove."""
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sessions.c.batch_count), 0),
                sa.func.coalesce(sa.func.sum(sessions.c.byte_count), 0),
            ).where(_last_activity() < cutoff)
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def delete_sessions(conn: AsyncConnection, session_ids: list[str]) -> list[str]:
    """Delete sessions and their batch rows; return the batch blob keys to delete (inline
    batches have none: they go with their rows)."""
    if not session_ids:
        return []
    keys = [
        r[0]
        for r in await conn.execute(
            sa.select(session_batches.c.blob_key).where(
                session_batches.c.session_id.in_(session_ids)
                & session_batches.c.blob_key.is_not(None)
            )
        )
    ]
    await conn.execute(
        session_batches.delete().where(session_batches.c.session_id.in_(session_ids))
    )
    await conn.execute(sessions.delete().where(sessions.c.id.in_(session_ids)))
    return keys


async def existing_session_ids(conn: AsyncConnection, session_ids: list[str]) -> set[str]:
    if not session_ids:
        return set()
    rows = await conn.execute(sa.select(sessions.c.id).where(sessions.c.id.in_(session_ids)))
    return {r[0] for r in rows}


async def images_unused_since(conn: AsyncConnection, cutoff: datetime) -> tuple[int, int]:
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(session_images.c.size), 0)
            ).where(session_images.c.last_used_at < cutoff)
        )
    ).one()
    return int(row[0]), int(row[1])


async def delete_images_unused_since(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    """Delete images no session has uploaded since ``cutoff``; return their blob keys."""
    result = await conn.execute(
        session_images.delete()
        .where(session_images.c.last_used_at < cutoff)
        .returning(session_images.c.blob_key)
    )
    return [r[0] for r in result]
