"""The key that signs file links in JSON pushes: one per installation, kept in the database
(so every server and worker process agrees), created on first use and cached."""

from __future__ import annotations

import secrets

from fieldreport.state import AppState
from fieldreport.storage.deliveries import find_signing_key, signing_key

_cache: dict[str, str] = {}


async def link_key(state: AppState) -> str:
    cached = _cache.get(state.db.url)
    if cached is not None:
        return cached
    async with state.db.read() as conn:
        key = await find_signing_key(conn)
    if key is None:
        async with state.db.write() as conn:
            key = await signing_key(conn, secrets.token_urlsafe(32))
    _cache[state.db.url] = key
    return key
