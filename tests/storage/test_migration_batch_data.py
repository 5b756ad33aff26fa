"""Migrations 0006 (``session_batches.data``), 0007 (``session_batches.codec``) and 0008
(PostgreSQL: rows up to a page kept whole) on databases that already hold batches, on SQLite
and PostgreSQL: old rows stay readable, new rows may be inline (and deflated), the schema
matches the table definition, and going back loses nothing."""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.db import Database
from fieldreport.storage.migrate import alembic_config, upgrade
from fieldreport.storage.schema import metadata
from fieldreport.storage.schema.base import UTCDateTime
from fieldreport.storage.schema.core import projects
from fieldreport.storage.schema.sessions import session_batches, sessions
from fieldreport.storage.session_batches import get_batch, record_batch, session_batches_in_order
from tests.support import pg

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SID = "4f1c7a2e-1111-4222-8333-944455556666"
# session_batches as migration 0002 made it (every row names a blob).
OLD_BATCHES = sa.table(
    "session_batches",
    sa.column("session_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("received_at", UTCDateTime),
    sa.column("size", sa.Integer),
    sa.column("blob_key", sa.String),
)


@pytest.fixture
def empty_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (not the migrated template)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name, url = asyncio.run(pg.create_database())
    yield url
    asyncio.run(pg.drop_database(name))


@pytest.fixture
async def db(empty_url: str) -> AsyncIterator[Database]:
    database = Database(empty_url)
    yield database
    await database.dispose()


async def _alembic(db: Database, step: Callable[[Config], None]) -> None:
    async with db.engine.connect() as conn:

        def run(sync_conn: sa.Connection) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync_conn
            step(cfg)

        await conn.run_sync(run)
        await conn.commit()


async def _columns(db: Database) -> dict[str, bool]:
    """``session_batches``' columns: name -> nullable."""
    async with db.engine.connect() as conn:
        cols = await conn.run_sync(lambda c: sa.inspect(c).get_columns("session_batches"))
    return {c["name"]: bool(c["nullable"]) for c in cols}


async def _project_and_session(conn: AsyncConnection, **counts: int) -> None:
    """Project 1 and its web session ``SID``, in the tables as every revision has them."""
    await conn.execute(
        projects.insert().values(
            id=1,
            name="acme",
            public_key_hash="p",
            secret_key_hash="s",
            public_key_hint="p",
            secret_key_hint="s",
            created_at=WHEN,
        )
    )
    await conn.execute(
        sessions.insert().values(
            id=SID, project_id=1, platform="web", user_uuid="u", started_at=WHEN, **counts
        )
    )


async def _record_inline(conn: AsyncConnection, data: bytes, *, late: bool = False) -> int | None:
    """Record ``data`` as the session's next batch, kept in its row (as the server does)."""
    return await record_batch(
        conn,
        session_id=SID,
        project_id=1,
        late=late,
        received_at=WHEN,
        size=len(data),
        encoding="",
        blob_key=None,
        data=data,
    )


async def test_upgrade_keeps_blob_backed_rows_and_allows_inline_ones(db: Database) -> None:
    # A database of the release before 0006, with a session and two blob-backed batches.
    await _alembic(db, lambda cfg: command.upgrade(cfg, "0002_sessions"))
    assert "data" not in await _columns(db)
    async with db.engine.begin() as conn:
        await _project_and_session(conn, batch_count=2, byte_count=6)
        await conn.execute(
            OLD_BATCHES.insert(),
            [
                {
                    "session_id": SID,
                    "seq": seq,
                    "received_at": WHEN,
                    "size": 3,
                    "blob_key": f"sessions/1/{SID}/{seq}",
                }
                for seq in (1, 2)
            ],
        )

    await upgrade(db)
    assert await _columns(db) == {
        "id": False,
        "session_id": False,
        "seq": False,
        "late": False,
        "received_at": False,
        "size": False,
        "encoding": False,
        "blob_key": True,
        "data": True,
        "codec": True,
    }
    async with db.engine.begin() as conn:
        old = await session_batches_in_order(conn, SID)
        assert [(b.seq, b.blob_key, b.inline) for b in old] == [
            (1, f"sessions/1/{SID}/1", False),
            (2, f"sessions/1/{SID}/2", False),
        ]
        assert (await get_batch(conn, SID, 1)) == (old[0], None)
        assert await _record_inline(conn, b"[]", late=True) == 3
        assert (await get_batch(conn, SID, 3)) is not None
    with pytest.raises(IntegrityError):  # the CHECK constraint came with the migration
        async with db.engine.begin() as conn:
            await conn.execute(
                session_batches.insert().values(
                    session_id=SID, seq=4, received_at=WHEN, size=1, blob_key=None, data=None
                )
            )

    # The migrated table is the one the code describes (columns, types, nullability).
    async with db.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata
            )
        )
    assert [d for d in diffs if "session_batches" in repr(d)] == []

    if db.dialect == "postgresql":  # TOAST compresses batches with lz4 where the server can
        async with db.engine.connect() as conn:
            lz4 = (
                await conn.execute(
                    sa.text(
                        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                        " WHERE name = 'default_toast_compression'"
                    )
                )
            ).scalar()
            method = (
                await conn.execute(
                    sa.text(
                        "SELECT attcompression::text FROM pg_attribute"
                        " WHERE attrelid = 'session_batches'::regclass AND attname = 'data'"
                    )
                )
            ).scalar()
        assert method == ("l" if lz4 else "")

    # Going back refuses to drop batches that live only in their rows ...
    with pytest.raises(RuntimeError, match="would lose them"):
        await _alembic(db, lambda cfg: command.downgrade(cfg, "0002_sessions"))
    async with db.engine.begin() as conn:
        await conn.execute(session_batches.delete().where(session_batches.c.seq == 3))
    # ... and without them restores the old table, blob-backed rows intact.
    await _alembic(db, lambda cfg: command.downgrade(cfg, "0002_sessions"))
    columns = await _columns(db)
    assert "data" not in columns and columns["blob_key"] is False
    async with db.engine.connect() as conn:
        keys = await conn.execute(sa.text("SELECT blob_key FROM session_batches ORDER BY seq"))
        assert [r[0] for r in keys] == [f"sessions/1/{SID}/1", f"sessions/1/{SID}/2"]


async def test_codec_upgrade_reads_old_rows_and_downgrade_inflates_new_ones(db: Database) -> None:
    await _alembic(db, lambda cfg: command.upgrade(cfg, "0006_session_batch_data"))
    old_batch = b'[{"type":3,"data":{"source":2}}]' * 40
    async with db.engine.begin() as conn:
        await _project_and_session(conn)
        await conn.execute(
            sa.text(
                "INSERT INTO session_batches (session_id, seq, late, received_at, size, encoding,"
                " data) VALUES (:sid, 1, :late, :when, :size, '', :data)"
            ),
            {"sid": SID, "late": False, "when": WHEN, "size": len(old_batch), "data": old_batch},
        )
        await conn.execute(sa.text("UPDATE sessions SET batch_count = 1"))

    await upgrade(db)
    new_batch = b'[{"type":3,"data":{"source":1,"positions":[]}}]' * 60
    async with db.engine.begin() as conn:
        assert await _record_inline(conn, new_batch) == 2
        # A row deflated by the server (what SQLite databases hold), on either database.
        await conn.execute(
            session_batches.insert().values(
                session_id=SID,
                seq=3,
                received_at=WHEN,
                size=len(new_batch),
                data=zlib.compress(new_batch),
                codec="zlib",
            )
        )
        stored = (await conn.execute(sa.text("SELECT seq, codec FROM session_batches"))).all()
        assert sorted(stored) == [(1, None), (2, "zlib"), (3, "zlib")]
        for seq, sent in ((1, old_batch), (2, new_batch), (3, new_batch)):
            assert (await get_batch(conn, SID, seq))[1] == sent  # type: ignore[index]

    await _alembic(db, lambda cfg: command.downgrade(cfg, "0006_session_batch_data"))
    assert "codec" not in await _columns(db)
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT seq, data FROM session_batches ORDER BY seq"))
        assert [(r[0], bytes(r[1])) for r in rows] == [
            (1, old_batch),
            (2, new_batch),
            (3, new_batch),
        ]


async def test_inline_upgrade_keeps_toasted_rows_and_stores_new_ones_whole(db: Database) -> None:
    """0008: on PostgreSQL a deflated batch's row stays in the table's page (no TOAST
    compression, no TOAST table rows); batches TOAST compressed and moved before read alike,
    and so do rows too large for a page. SQLite: nothing to do."""
    await _alembic(db, lambda cfg: command.upgrade(cfg, "0007_session_batch_codec"))
    # Written as the release before stored a 20 KB JSON batch on PostgreSQL: as sent, so
    # that TOAST compresses it (lz4 or pglz) and moves it out of the row.
    old_batch = b"".join(b'{"type":3,"timestamp":%d,"data":{"x":%d}},' % (i, i) for i in range(500))
    async with db.engine.begin() as conn:
        await _project_and_session(conn)
        await conn.execute(
            session_batches.insert().values(
                session_id=SID, seq=1, received_at=WHEN, size=len(old_batch), data=old_batch
            )
        )
        await conn.execute(sa.text("UPDATE sessions SET batch_count = 1"))

    await upgrade(db)
    new_batch = old_batch.replace(b'"x"', b'"y"')
    noise = os.urandom(20_000)  # does not deflate: still compressed (in vain) and moved
    chunks = []  # rows of session_batches' TOAST table after each batch (PostgreSQL)
    async with db.engine.begin() as conn:
        chunks.append(await _toast_chunks(conn))
        for data in (new_batch, noise):
            await _record_inline(conn, data)
            chunks.append(await _toast_chunks(conn))
        for seq, sent in ((1, old_batch), (2, new_batch), (3, noise)):
            assert (await get_batch(conn, SID, seq))[1] == sent  # type: ignore[index]
        if db.dialect != "postgresql":
            return
        options = (
            await conn.execute(
                sa.text("SELECT reloptions FROM pg_class WHERE relname = 'session_batches'")
            )
        ).scalar()
        assert options == ["toast_tuple_target=8160"]
        stored = (
            await conn.execute(
                sa.text(
                    "SELECT codec, pg_column_compression(data) FROM session_batches ORDER BY seq"
                )
            )
        ).all()
    # The old batch: compressed by TOAST and moved; the new one: deflated by the server,
    # whole in its row (no TOAST chunk added); random bytes larger than a page: moved.
    assert stored[0][0] is None and stored[0][1] is not None and chunks[0] > 0
    assert stored[1] == ("zlib", None) and chunks[1] == chunks[0]
    assert stored[2][0] is None and chunks[2] > chunks[1]

    await _alembic(db, lambda cfg: command.downgrade(cfg, "0007_session_batch_codec"))
    async with db.engine.connect() as conn:
        options = (
            await conn.execute(
                sa.text("SELECT reloptions FROM pg_class WHERE relname = 'session_batches'")
            )
        ).scalar()
        assert options is None


async def _toast_chunks(conn: AsyncConnection) -> int:
    """How many rows session_batches' TOAST table holds (PostgreSQL; 0 on SQLite)."""
    if conn.dialect.name != "postgresql":
        return 0
    toast = (
        await conn.execute(
            sa.text(
                "SELECT reltoastrelid::regclass::text FROM pg_class"
                " WHERE relname = 'session_batches'"
            )
        )
    ).scalar()
    return int((await conn.execute(sa.text(f"SELECT count(*) FROM {toast}"))).scalar_one())
