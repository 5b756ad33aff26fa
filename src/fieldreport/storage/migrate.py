"""Run the Alembic migrations programmatically (``serve`` and every CLI command do this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from fieldreport.storage.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x6669656C  # "fiel": serialises migrations across processes on PostgreSQL


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(conn: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "heads")


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision of every migration branch."""
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            await conn.commit()
        try:
            await conn.run_sync(_upgrade)
            await conn.commit()
        finally:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                await conn.commit()
