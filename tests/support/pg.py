"""Throw-away PostgreSQL databases on the local server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

PG_ADMIN_URL = os.environ.get(
    "FIELDREPORT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _url_for(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(template: str | None = None) -> tuple[str, str]:
    """Create a fresh database; returns ``(name, url)``."""
    name = f"fieldreport_test_{uuid.uuid4().hex[:12]}"
    suffix = f" TEMPLATE {template}" if template else ""
    await _admin(f'CREATE DATABASE "{name}"{suffix}')
    return name, _url_for(name)


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
