"""Helpers for session-recording tests: a movable clock, gzip, rrweb-like events, and what
was stored."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.schema.sessions import session_batches
from fieldreport.storage.session_batches import Batch, BatchContent, session_batches_in_order


class FakeClock:
    """Stands in for ``AppState.clock``: time moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"type": 3, "timestamp": 1_700_000_000_000 + i, "data": {"source": 1, "n": i}}
        for i in range(start, start + count)
    ]


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def gzip_bomb(inflated: int, fill: bytes = b" ", prefix: bytes = b"[") -> bytes:
    """A small gzip body that inflates to ``inflated`` bytes (built without holding them)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(prefix)]
    block = fill * (1024 * 1024)
    for _ in range(inflated // len(block)):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


async def start(
    client: httpx.AsyncClient,
    platform: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(f"/v1/{platform}/start", json=body, headers=headers or {})


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def stored_batches(state: AppState, session_id: str) -> list[tuple[Batch, bytes]]:
    """A session's batches in order with their bytes, read from wherever they are stored
    (their row or the blob store)."""
    async with state.db.read() as conn:
        batches = await session_batches_in_order(conn, session_id)
    content = BatchContent(state.db, state.blobs, session_id, batches)
    return [(b, b"".join([chunk async for chunk in content.chunks(b)])) for b in batches]


async def stored_anything(state: AppState) -> tuple[int, int]:
    """``(batch rows, batch blobs)`` in the whole store: (0, 0) when nothing was kept."""
    async with state.db.read() as conn:
        count = sa.select(sa.func.count()).select_from(session_batches)
        rows = (await conn.execute(count)).scalar()
    blobs = [k async for k in state.blobs.list("sessions")]
    return int(rows or 0), len(blobs)
