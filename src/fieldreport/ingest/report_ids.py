"""Report ids: random (version 4) UUIDs, from random bytes fetched a few kilobytes at a time.

``uuid.uuid4()`` calls ``os.urandom(16)``, which releases the GIL around its ``getrandom``
system call; on the event loop, under load, each release meant waiting for a worker thread
(the batch writer, a blob write) to hand the GIL back: ``uuid4`` was 4-5% of the samples of
a loaded server, for one call per report. The bytes come from the same source
(``os.urandom``), 256 ids' worth per call. A forked child starts with a new pool, so two
processes never hand out the same id.
"""

from __future__ import annotations

import os
import uuid

_POOL_BYTES = 16 * 256

_pool = b""
_used = 0


def new_report_id() -> str:
    """A new report id, as ``str(uuid.uuid4())`` gives."""
    global _pool, _used
    if _used + 16 > len(_pool):
        _pool, _used = os.urandom(_POOL_BYTES), 0
    raw = _pool[_used : _used + 16]
    _used += 16
    return str(uuid.UUID(bytes=raw, version=4))


def _forget_pool() -> None:
    global _pool, _used
    _pool, _used = b"", 0


os.register_at_fork(after_in_child=_forget_pool)
