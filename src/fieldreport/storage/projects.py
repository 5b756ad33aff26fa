"""Queries on projects, their keys and allowed origins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.keys import KeyKind, generate_key, hash_key, key_hint
from fieldreport.storage import driver, plainsql
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.core import project_origins, projects


class ProjectExists(ValueError):
    pass


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    public_key_hint: str
    secret_key_hint: str
    created_at: datetime
    origins: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NewProject:
    project: Project
    public_key: str
    secret_key: str


def _row_to_project(row: Any, origins: list[str]) -> Project:
    m = row._mapping
    return Project(
        id=m["id"],
        name=m["name"],
        public_key_hint=m["public_key_hint"],
        secret_key_hint=m["secret_key_hint"],
        created_at=m["created_at"],
        origins=origins,
    )


_COLUMNS = (
    projects.c.id,
    projects.c.name,
    projects.c.public_key_hint,
    projects.c.secret_key_hint,
    projects.c.created_at,
)


def _origins_of(conn: Connection, project_id: int) -> list[str]:
    rows = conn.execute(
        sa.select(project_origins.c.origin)
        .where(project_origins.c.project_id == project_id)
        .order_by(project_origins.c.origin)
    )
    return [r[0] for r in rows]


async def _origins(conn: AsyncConnection, project_id: int) -> list[str]:
    return await conn.run_sync(_origins_of, project_id)


async def create_project(conn: AsyncConnection, name: str) -> NewProject:
    public_key, secret_key = generate_key("public"), generate_key("secret")
    try:
        result = await conn.execute(
            projects.insert()
            .values(
                name=name,
                public_key_hash=hash_key(public_key),
                secret_key_hash=hash_key(secret_key),
                public_key_hint=key_hint(public_key),
                secret_key_hint=key_hint(secret_key),
                last_ticketnr=0,
                created_at=utcnow(),
            )
            .returning(*_COLUMNS)
        )
    except IntegrityError as exc:
        raise ProjectExists(f"a project named {name!r} already exists") from exc
    return NewProject(_row_to_project(result.one(), []), public_key, secret_key)


def _find(conn: Connection, where: sa.ColumnElement[bool]) -> Project | None:
    row = conn.execute(sa.select(*_COLUMNS).where(where)).first()
    if row is None:
        return None
    return _row_to_project(row, _origins_of(conn, row._mapping["id"]))


async def _one(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> Project | None:
    return await conn.run_sync(_find, where)


async def get_project(conn: AsyncConnection, name_or_id: str | int) -> Project | None:
    """Find a project by name, or by numeric id."""
    if isinstance(name_or_id, int):
        return await _one(conn, projects.c.id == name_or_id)
    found = await _one(conn, projects.c.name == name_or_id)
    if found is None and name_or_id.isdigit():
        found = await _one(conn, projects.c.id == int(name_or_id))
    return found


def _by_key_hash(column: sa.Column[str]) -> sa.Select[Any]:
    """A project and its origins (one row per origin) by a key hash: built once, so the
    lookup every ingest request makes costs one statement and no statement building."""
    return (
        sa.select(*_COLUMNS, project_origins.c.origin)
        .select_from(
            projects.outerjoin(project_origins, project_origins.c.project_id == projects.c.id)
        )
        .where(column == sa.bindparam("key_hash"))
        .order_by(project_origins.c.origin)
    )


_BY_KEY_HASH = {
    "public": _by_key_hash(projects.c.public_key_hash),
    "secret": _by_key_hash(projects.c.secret_key_hash),
}


def find_by_key(conn: Connection, key: str, kind: KeyKind) -> Project | None:
    """The project a public or secret key belongs to (synchronous: see ``Database.run_read``)."""
    rows = conn.execute(_BY_KEY_HASH[kind], {"key_hash": hash_key(key)}).all()
    if not rows:
        return None
    return _row_to_project(rows[0], [r.origin for r in rows if r.origin is not None])


async def project_by_key(conn: AsyncConnection, key: str, kind: KeyKind) -> Project | None:
    return await conn.run_sync(find_by_key, key, kind)


async def projects_for_secret_hashes(
    conn: AsyncConnection, hashes: Iterable[str]
) -> dict[str, int]:
    """Secret key hash -> project id, for the hashes that still belong to a project."""
    return await conn.run_sync(secret_owners, hashes)


def secret_owners(conn: Connection, hashes: Iterable[str]) -> dict[str, int]:
    """:func:`projects_for_secret_hashes` on a synchronous connection. The batch writer runs
    it in every transaction of events, so it is plain SQL on the driver's cursor (no
    statement building, no SQLAlchemy execution: :mod:`fieldreport.storage.driver`)."""
    return {h: int(pid) for h, pid in _by_hash(conn, _KEY_OWNERS, hashes)}


_KEY_OWNERS = "SELECT secret_key_hash, id FROM projects WHERE secret_key_hash"


def _by_hash(conn: Connection, select: str, hashes: Iterable[str]) -> list[Any]:
    """The rows of ``select`` (ending in ``WHERE <hash column>``) for the distinct
    ``hashes``, as plain SQL on the driver's cursor; on psycopg (the batch writer) on libpq
    (:func:`driver.pg_exec_params`), the values as text (ids converted by the callers)."""
    wanted = sorted(set(hashes))
    if not wanted:
        return []
    if conn.dialect.driver == "psycopg":  # the batch writer's: straight on libpq, one array
        sql = _PG_BY_HASH.get(select)
        if sql is None:
            sql = _PG_BY_HASH[select] = f"{select} = ANY($1::varchar[])".encode()
        result = driver.pg_exec_params(conn, sql, [driver.pg_text_array(wanted)], [0], [0])
        return driver.pg_text_rows(result)
    fragment, params = plainsql.in_list(conn.dialect, wanted, "varchar")
    return list(plainsql.execute(conn, f"{select} {fragment}", params).fetchall())


_PG_BY_HASH: dict[str, bytes] = {}


def public_key_holders(conn: Connection, hashes: Iterable[str]) -> dict[str, tuple[int, set[str]]]:
    """Public key hash -> (project id, the project's allowed origins), for the hashes that
    still belong to a project. The report writer runs it in every transaction of reports to
    confirm cached key lookups, so it is plain SQL on the driver's cursor."""
    holders: dict[str, tuple[int, set[str]]] = {}
    for key_hash, project_id, origin in _by_hash(conn, _PUBLIC_HOLDERS, hashes):
        _, origins = holders.setdefault(key_hash, (int(project_id), set()))
        if origin is not None:
            origins.add(origin)
    return holders


_PUBLIC_HOLDERS = (
    "SELECT p.public_key_hash, p.id, o.origin FROM projects p"
    " LEFT JOIN project_origins o ON o.project_id = p.id WHERE p.public_key_hash"
)


async def list_projects(conn: AsyncConnection) -> list[Project]:
    rows = (await conn.execute(sa.select(*_COLUMNS).order_by(projects.c.id))).all()
    return [_row_to_project(r, await _origins(conn, r._mapping["id"])) for r in rows]


async def rotate_key(conn: AsyncConnection, project_id: int, kind: KeyKind) -> str:
    """Replace a key; the old one stops working at once. Returns the new key."""
    key = generate_key(kind)
    values = (
        {"public_key_hash": hash_key(key), "public_key_hint": key_hint(key)}
        if kind == "public"
        else {"secret_key_hash": hash_key(key), "secret_key_hint": key_hint(key)}
    )
    await conn.execute(projects.update().where(projects.c.id == project_id).values(**values))
    return key


async def set_origins(
    conn: AsyncConnection, project_id: int, *, add: list[str], remove: list[str]
) -> list[str]:
    for origin in remove:
        await conn.execute(
            project_origins.delete().where(
                (project_origins.c.project_id == project_id) & (project_origins.c.origin == origin)
            )
        )
    existing = set(await _origins(conn, project_id))
    for origin in add:
        if origin not in existing:
            await conn.execute(
                project_origins.insert().values(project_id=project_id, origin=origin)
            )
            existing.add(origin)
    return sorted(existing)


async def origin_known(conn: AsyncConnection, origin: str) -> bool:
    """Whether any project allows ``origin`` (used to answer CORS preflights)."""
    row = await conn.execute(
        sa.select(project_origins.c.project_id).where(project_origins.c.origin == origin).limit(1)
    )
    return row.first() is not None


# Built once: the batch writer runs it in every transaction of reports, and building the
# statement cost more than running it.
_TAKE_TICKETNRS = (
    projects.update()
    .where(projects.c.id == sa.bindparam("tn_project"))
    .values(last_ticketnr=projects.c.last_ticketnr + sa.bindparam("tn_count"))
    .returning(projects.c.last_ticketnr)
)


#: The same on libpq, for the batch writer's psycopg connection (see take_ticketnrs).
_PG_TAKE_TICKETNRS = (
    b"UPDATE projects SET last_ticketnr = last_ticketnr + $2 WHERE id = $1 RETURNING last_ticketnr"
)


def take_ticketnrs(conn: Connection, project_id: int, count: int) -> int:
    """Allocate ``count`` consecutive ticket numbers of the project inside the caller's write
    transaction (one row update, held until commit, so numbers have no gaps); return the
    first. On psycopg (the batch writer on PostgreSQL) the update goes straight on libpq
    (:func:`driver.pg_exec_params`): the Core statement cost the writer thread its
    compile-cache lookup, execution context and result (~60 µs) for one round trip."""
    last: Any
    if conn.dialect.driver == "psycopg":
        result = driver.pg_exec_params(
            conn, _PG_TAKE_TICKETNRS, [b"%d" % project_id, b"%d" % count], [0, 0], [0, 0]
        )
        last = result.get_value(0, 0) if result.ntuples else None
    else:
        last = conn.execute(
            _TAKE_TICKETNRS, {"tn_project": project_id, "tn_count": count}
        ).scalar_one_or_none()
    if last is None:
        raise LookupError(f"project {project_id} does not exist (deleted meanwhile?)")
    return int(last) - count + 1


async def delete_project(conn: AsyncConnection, project_id: int) -> None:
    await conn.execute(projects.delete().where(projects.c.id == project_id))
