"""Random ids for hot paths: report ids and request ids, from pooled ``os.urandom`` bytes.

``os.urandom`` releases the GIL around its ``getrandom`` system call. On the event loop, under
load, each release meant waiting for a worker thread (the batch writer, a blob write) to hand
the GIL back, up to the interpreter's switch interval: ``uuid.uuid4()`` was 4-5% of a loaded
server's samples for one call per report, and every request made a request id the same way.
The bytes come from the same source, 256 ids' worth per call. A forked child starts with an
empty pool, so two processes never hand out the same id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

_POOL_BYTES = 16 * 256

_pool = b""
_used = 0


def random16() -> bytes:
    """16 random bytes (``os.urandom(16)``, from the pool)."""
    global _pool, _used
    if _used + 16 > len(_pool):
        _pool, _used = os.urandom(_POOL_BYTES), 0
    raw = _pool[_used : _used + 16]
    _used += 16
    return raw


def new_uuid4() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives."""
    return str(uuid.UUID(bytes=random16(), version=4))


_hex_ids: Iterator[str] = iter(())


def new_hex_id() -> str:
    """32 random hex digits (a request id): 16 ``os.urandom`` bytes in hex, taken from
    256 made at once (one C-level ``next`` per id: ~2.1k instructions a call where
    ``random16().hex()`` was ~3.3k, on every request)."""
    return next(_hex_ids, None) or _more_hex_ids()


def _more_hex_ids() -> str:
    global _hex_ids
    digits = os.urandom(_POOL_BYTES).hex()
    _hex_ids = iter([digits[i : i + 32] for i in range(0, len(digits), 32)])
    return next(_hex_ids)


def _forget_pool() -> None:
    global _pool, _used, _hex_ids
    _pool, _used = b"", 0
    _hex_ids = iter(())


os.register_at_fork(after_in_child=_forget_pool)
