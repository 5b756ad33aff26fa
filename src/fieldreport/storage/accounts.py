"""Queries on dashboard accounts: users, memberships, login sessions and failed logins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.schema.accounts import (
    login_failures,
    project_members,
    user_sessions,
    users,
)
from fieldreport.storage.schema.base import UTCDateTime, utcnow
from fieldreport.storage.schema.core import projects


class UserExists(ValueError):
    pass


@dataclass(frozen=True)
class User:
    id: int
    email: str
    is_admin: bool
    must_change_password: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class LoginSession:
    user: User
    csrf_token: str
    expires_at: datetime


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _user(m: Any) -> User:
    return User(
        id=m["id"],
        email=m["email"],
        is_admin=bool(m["is_admin"]),
        must_change_password=bool(m["must_change_password"]),
        created_at=m["created_at"],
        last_login_at=m["last_login_at"],
    )


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.is_admin,
    users.c.must_change_password,
    users.c.created_at,
    users.c.last_login_at,
)


async def create_user(
    conn: AsyncConnection,
    email: str,
    password_hash: str,
    *,
    is_admin: bool = False,
    must_change_password: bool = False,
) -> User:
    try:
        result = await conn.execute(
            users.insert()
            .values(
                email=normalize_email(email),
                password_hash=password_hash,
                is_admin=is_admin,
                must_change_password=must_change_password,
                created_at=utcnow(),
            )
            .returning(*_USER_COLUMNS)
        )
    except IntegrityError as exc:
        raise UserExists(f"a user {normalize_email(email)!r} already exists") from exc
    return _user(result.one()._mapping)


async def get_user(conn: AsyncConnection, email_or_id: str | int) -> User | None:
    where = (
        users.c.id == email_or_id
        if isinstance(email_or_id, int)
        else users.c.email == normalize_email(email_or_id)
    )
    row = (await conn.execute(sa.select(*_USER_COLUMNS).where(where))).first()
    return _user(row._mapping) if row else None


async def password_hash_for(conn: AsyncConnection, email: str) -> tuple[User, str] | None:
    """The user and their stored password hash (for verifying a login)."""
    row = (
        await conn.execute(
            sa.select(*_USER_COLUMNS, users.c.password_hash).where(
                users.c.email == normalize_email(email)
            )
        )
    ).first()
    if row is None:
        return None
    return _user(row._mapping), row._mapping["password_hash"]


async def list_users(conn: AsyncConnection) -> list[User]:
    rows = await conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.email))
    return [_user(r._mapping) for r in rows]


async def set_password(
    conn: AsyncConnection, user_id: int, password_hash: str, *, must_change: bool = False
) -> None:
    await conn.execute(
        users.update()
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, must_change_password=must_change)
    )


async def delete_user(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(users.delete().where(users.c.id == user_id))


# --- memberships ----------------------------------------------------------------------------


async def add_member(conn: AsyncConnection, project_id: int, user_id: int) -> None:
    exists = await conn.execute(
        sa.select(project_members.c.user_id).where(
            (project_members.c.project_id == project_id) & (project_members.c.user_id == user_id)
        )
    )
    if exists.first() is None:
        await conn.execute(
            project_members.insert().values(
                project_id=project_id, user_id=user_id, added_at=utcnow()
            )
        )


async def remove_member(conn: AsyncConnection, project_id: int, user_id: int) -> None:
    await conn.execute(
        project_members.delete().where(
            (project_members.c.project_id == project_id) & (project_members.c.user_id == user_id)
        )
    )


async def list_members(conn: AsyncConnection, project_id: int) -> list[User]:
    rows = await conn.execute(
        sa.select(*_USER_COLUMNS)
        .join_from(users, project_members, users.c.id == project_members.c.user_id)
        .where(project_members.c.project_id == project_id)
        .order_by(users.c.email)
    )
    return [_user(r._mapping) for r in rows]


async def visible_project_ids(conn: AsyncConnection, user: User) -> list[int]:
    """Projects a user may see: all of them for admins, their memberships otherwise."""
    if user.is_admin:
        query = sa.select(projects.c.id)
    else:
        query = sa.select(project_members.c.project_id).where(project_members.c.user_id == user.id)
    return sorted(int(r[0]) for r in await conn.execute(query))


async def can_see_project(conn: AsyncConnection, user: User, project_id: int) -> bool:
    if user.is_admin:
        return True
    row = await conn.execute(
        sa.select(project_members.c.user_id).where(
            (project_members.c.project_id == project_id) & (project_members.c.user_id == user.id)
        )
    )
    return row.first() is not None


# --- login sessions -------------------------------------------------------------------------


async def create_session(
    conn: AsyncConnection,
    *,
    token_hash: str,
    user_id: int,
    csrf_token: str,
    now: datetime,
    max_age: timedelta,
    ip: str = "",
    user_agent: str = "",
) -> None:
    await conn.execute(
        user_sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            expires_at=now + max_age,
            ip=ip[:45],
            user_agent=user_agent[:300],
        )
    )
    await conn.execute(users.update().where(users.c.id == user_id).values(last_login_at=now))
    # Housekeeping: forget expired sessions of everyone.
    await conn.execute(user_sessions.delete().where(user_sessions.c.expires_at < now))


async def session_by_token_hash(
    conn: AsyncConnection, token_hash: str, now: datetime
) -> LoginSession | None:
    row = (
        await conn.execute(
            sa.select(*_USER_COLUMNS, user_sessions.c.csrf_token, user_sessions.c.expires_at)
            .join_from(user_sessions, users, user_sessions.c.user_id == users.c.id)
            .where((user_sessions.c.token_hash == token_hash) & (user_sessions.c.expires_at > now))
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    return LoginSession(user=_user(m), csrf_token=m["csrf_token"], expires_at=m["expires_at"])


async def delete_session(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(user_sessions.delete().where(user_sessions.c.token_hash == token_hash))


async def delete_user_sessions(
    conn: AsyncConnection, user_id: int, *, keep_token_hash: str | None = None
) -> None:
    """Log a user out everywhere (after a password change), optionally keeping one session."""
    where = user_sessions.c.user_id == user_id
    if keep_token_hash is not None:
        where = where & (user_sessions.c.token_hash != keep_token_hash)
    await conn.execute(user_sessions.delete().where(where))


# --- failed logins --------------------------------------------------------------------------


async def record_login_failure(conn: AsyncConnection, keys: list[str], now: datetime) -> None:
    await conn.execute(login_failures.insert(), [{"key": k[:400], "at": now} for k in keys])


async def login_failures_since(
    conn: AsyncConnection, keys: list[str], since: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """For each key: failures at or after ``since`` and the oldest of them."""
    rows = await conn.execute(
        sa.select(
            login_failures.c.key,
            sa.func.count(),
            sa.type_coerce(sa.func.min(login_failures.c.at), UTCDateTime),
        )
        .where(login_failures.c.key.in_([k[:400] for k in keys]) & (login_failures.c.at >= since))
        .group_by(login_failures.c.key)
    )
    found = {r[0]: (int(r[1]), r[2]) for r in rows}
    out: dict[str, tuple[int, datetime | None]] = {}
    for k in keys:
        out[k] = found.get(k[:400], (0, None))
    return out


async def clear_login_failures(conn: AsyncConnection, keys: list[str], before: datetime) -> None:
    """Forget failures of ``keys`` and, for every key, those older than ``before``."""
    await conn.execute(
        login_failures.delete().where(
            login_failures.c.key.in_([k[:400] for k in keys]) | (login_failures.c.at < before)
        )
    )
