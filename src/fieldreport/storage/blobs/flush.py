"""Group flush for the local blob store: one ``syncfs(2)`` makes many blobs durable.

Blobs are written (temporary file, rename into place) without an fsync each; a flush then
syncs the whole filesystem under the store's root: the files' data, their inodes, the
renames and any new directories, in one journal commit. Callers flush as a group, like a
database group commit: a lone caller's flush starts at once (no timer); callers that ask
while one runs join the next, which starts as soon as the running one ends and covers
every write that finished before it started.

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
import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable

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


class GroupFlush:
    """Runs ``sync`` (blocking, on a worker thread) for groups of concurrent callers.

    Every :meth:`flush` returns after a ``sync`` that started after the call did, so it
    covers everything the caller wrote before calling; an error from that ``sync`` is
    raised to every caller it covered.
    """

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._next: asyncio.Future[None] | None = None
        self._driver: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._driver is not None and self._driver.get_loop() is not loop:
            self._driver = self._next = None  # left over from a loop that is gone
        if self._next is None:
            self._next = loop.create_future()
            # Nobody may be left to read a failure (all callers cancelled): not worth a warning.
            self._next.add_done_callback(_consume)
        waiter = self._next
        if self._driver is None:
            self._driver = loop.create_task(self._drive())
        # Cancelling one caller must not cancel the flush the others wait for.
        await asyncio.shield(waiter)

    async def _drive(self) -> None:
        group: asyncio.Future[None] | None = None
        try:
            while self._next is not None:
                group, self._next = self._next, None
                try:
                    await asyncio.to_thread(self._sync)
                except Exception as exc:
                    group.set_exception(exc)
                else:
                    group.set_result(None)
        except BaseException:
            # Cancelled (the loop is shutting down): nobody may wait forever.
            for future in (group, self._next):
                if future is not None and not future.done():
                    future.cancel()
            self._next = None
            raise
        finally:
            self._driver = None


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
