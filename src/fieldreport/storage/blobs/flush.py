"""Group flush for the local blob store: one ``syncfs(2)`` makes many blobs durable.

Blobs are written (temporary file, rename into place) without an fsync each; a flush then
syncs the whole filesystem under the store's root: the files' data, their inodes, the
renames and any new directories, in one journal commit. Callers flush as a group, like a
database group commit: a lone caller's flush starts at once (no timer); callers that ask
while one runs join the next, which starts as soon as the running one ends and covers
every write that finished before it started. The syncs run on a thread of the flush's own,
which answers each group as its sync ends and goes straight on to the next.

``syncfs`` reports writeback errors since Linux 5.8: errors recorded on the filesystem
since the store opened its root are returned once, to the flush that sees them. The root
directory stays open for the store's lifetime so none is missed. PostgreSQL syncs its data
directory the same way (``recovery_init_sync_method = syncfs``).

The price: a syncfs also writes whatever else is dirty on that filesystem (the database, other
programs' files), so the blob directory is best on a filesystem of its own or with the data
directory only. ``bench/diskceiling.py`` compares both ways on a given disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

#: ``syncfs(fd)``: raises :class:`OSError` on failure.
SyncFs = Callable[[int], None]


@functools.cache
def libc_syncfs() -> SyncFs | None:
    """``syncfs(2)`` from the C library, or ``None`` where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        # ctypes releases the GIL for the call: other threads run while the disk works.
        if call(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return syncfs


#: Told the outcome of a flush: ``None`` once durable, else the error. Called on the
#: flusher's thread: it must be quick and must not block.
Done = Callable[[Exception | None], None]


class GroupFlush:
    """Runs ``sync`` (blocking) for groups of concurrent callers, on a thread of its own.

    Every :meth:`flush` (or :meth:`then`) is answered after a ``sync`` that started after the
    call did, so it covers everything the caller wrote before calling; an error from that
    ``sync`` goes to every caller it covered.

    The flusher thread runs one ``sync`` after another as long as callers keep asking, and
    answers each group as its ``sync`` ends: no trip through the event loop between two
    ``sync`` calls, and no wait in the default executor's queue behind file writes (under
    load each cost ~7-15 ms per cycle, more than the ``syncfs`` itself). :meth:`then` lets
    the next stage (the batch writer) go on from the flusher's thread directly.
    """

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._lock = threading.Lock()
        self._waiting: list[Done] = []
        self._running = False
        self._thread: ThreadPoolExecutor | None = None
        # Counted by the flusher thread alone (read by /metrics at scrape time):
        self.syncs = 0  # ``sync`` calls that succeeded
        self.syncs_failed = 0  # ... that raised
        self.waits = 0  # callers answered (each waited for one sync)

    def then(self, done: Done) -> None:
        """Call ``done`` (on the flusher's thread) after a ``sync`` that starts after this
        call: with ``None``, or with the error that ``sync`` raised."""
        with self._lock:
            self._waiting.append(done)
            if self._running:
                return  # the running drain picks it up for its next sync
            self._running = True
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="fieldreport-flush")
            thread = self._thread
        thread.submit(self._drain)

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # A caller cancelled meanwhile cancels only its own future, not the sync.
        self.then(functools.partial(_answer, loop, future))
        await future

    def _drain(self) -> None:
        """On the flusher's thread: one ``sync`` per group of waiting callers, until none
        is left."""
        while True:
            with self._lock:
                group, self._waiting = self._waiting, []
                if not group:
                    self._running = False
                    return
            error: Exception | None = None
            try:
                self._sync()
            except Exception as exc:
                error = exc
                self.syncs_failed += 1
            else:
                self.syncs += 1
            self.waits += len(group)
            for done in group:
                try:
                    done(error)
                except Exception:
                    log.exception("a flush callback failed")

    def close(self) -> None:
        """Wait for the running drain (if any) and release the thread (a later flush starts
        a new one)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=True)


def _answer(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], error: Exception | None
) -> None:
    """From the flusher's thread: settle ``future`` on its loop (gone: nobody to tell)."""
    with contextlib.suppress(RuntimeError):  # the loop is closed
        loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # its caller was cancelled
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
