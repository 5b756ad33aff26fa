"""A short memory of key lookups, so the hot ingest paths need no database read per request.

Full-stack events remember ``secret key hash -> project id`` and reports ``public key hash ->
project`` (with its origins). An entry is only a hint: the write transaction that stores the
request's rows checks the key again, so a rotated key, a deleted project or a removed origin
stops working at once. What the cache bounds is the cost of a lookup, not the validity of a
key. Entries live ``ttl`` seconds; past ``size`` entries all are dropped (a burst of unknown
keys cannot grow it). Per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: How long an entry is trusted, and how many are kept.
TTL = 60.0
SIZE = 1024


class KeyCache(Generic[V]):
    """Key hash -> a value (what the key was found to belong to), for ``ttl`` seconds."""

    def __init__(
        self, ttl: float = TTL, size: int = SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[V, float]] = {}

    def get(self, key_hash: str) -> V | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[1] < self.clock():
            return None
        return entry[0]

    def put(self, key_hash: str, value: V) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key_hash] = (value, self.clock() + self.ttl)

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()
