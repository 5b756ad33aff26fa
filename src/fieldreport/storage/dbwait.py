"""Waiting for the database at start-up.

A server or worker started together with its database (a container stack, a machine that
boots) often comes up first. Instead of dying with a driver traceback, ``serve`` and
``worker`` retry the connection for ``FIELDREPORT_DATABASE_WAIT`` seconds, saying what they
wait for; when the time is up (or at once, for one-shot commands) they stop with one clear
line naming the database (password hidden) and the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fieldreport.storage.db import Database

log = logging.getLogger(__name__)

#: What a database that is not (yet) there raises: refused or timed-out connections
#: (``TimeoutError`` is an ``OSError``), unknown hosts, a server still starting up ("the
#: database system is starting up"; SQLAlchemy's DBAPIError covers its Operational- and
#: InterfaceError).
UNREACHABLE = (OSError, DBAPIError)


class DatabaseUnreachable(RuntimeError):
    """The database could not be reached within the time allowed."""


def shown_url(url: str) -> str:
    """The database URL with its password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _select_one(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


async def _ping(db: Database) -> None:
    # Through run_read: on SQLite a synchronous reader thread. aiosqlite's connection
    # thread, when its connect fails, hands a result to the event loop afterwards, and a
    # command that stops at once (the loop closed) then printed a thread traceback after
    # its one clear line.
    await db.run_read(_select_one)


async def wait_for_database(db: Database, seconds: float, *, max_delay: float = 2.0) -> None:
    """Return once ``SELECT 1`` succeeds; retry for up to ``seconds`` (never for
    SQLite: a file that cannot be opened will not appear by waiting). Raises
    :class:`DatabaseUnreachable` with the reason of the last failure."""
    deadline = time.monotonic() + max(0.0, seconds)
    delay = 0.25
    warned = False
    while True:
        try:
            await _ping(db)
        except UNREACHABLE as exc:
            reason = _reason(exc)
            left = deadline - time.monotonic()
            if db.is_sqlite or left <= 0:
                raise DatabaseUnreachable(
                    f"cannot reach the database {shown_url(db.url)}: {reason}"
                ) from exc
            if not warned:
                log.warning(
                    "database %s not reachable yet (%s); retrying for up to %.0f s",
                    shown_url(db.url),
                    reason,
                    left,
                )
                warned = True
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, max_delay)
        else:
            if warned:
                log.warning("database %s reachable", shown_url(db.url))
            return
