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

A caller that will ask for a flush once its writes are done may say so first
(:meth:`GroupFlush.hold`; a report does, before its files are written): a sync that comes
due then waits, at most :data:`HOLD_WAIT`, until the callers that held before it came due
have asked (or let go), so that they share it instead of each making the next. Every
group is a ``syncfs`` and a batch writer transaction. ``bench.reports_inproc`` (32 at a
time, data on tmpfs, paired runs): transactions per report 0.05-0.066 -> 0.031 (the 32
clients' reports in one), ``syncfs`` per report 0.058-0.145 -> 0.031, writer thread CPU
per report 205-255 -> 140-190 µs, process CPU per report 1661 -> 1519 µs on average
(lower in 5 of 6 pairs; this machine's runs spread ±10%).
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
import time
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


#: The longest a sync waits for the callers that held (:meth:`GroupFlush.hold`) before it
#: was due: a hold that is never released (a bug) delays one sync by this much, no more.
HOLD_WAIT = 0.02


class FlushHold:
    """A caller's promise of a :meth:`GroupFlush.then` to come (:meth:`GroupFlush.hold`).
    :meth:`release` lets go without asking (the caller failed); idempotent."""

    __slots__ = ("_epoch", "_group", "_open")

    def __init__(self, group: GroupFlush | None, epoch: int) -> None:
        self._group = group
        self._epoch = epoch
        self._open = group is not None

    def release(self) -> None:
        group = self._group
        if group is not None and self._open:
            with group._lock:
                group._release(self)


#: A hold that holds nothing: for stores where every write is durable when it returns.
NO_HOLD = FlushHold(None, 0)


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

    Holds (:meth:`hold`) are counted by *epoch*: the holds taken since the last sync that
    waited. A sync that is due while holds of the current epoch are open closes that epoch
    (holds taken from then on belong to the next one, so a steady stream of new callers
    cannot keep it waiting) and waits until the closed epoch's holds are released or
    :data:`HOLD_WAIT` has passed; callers that ask meanwhile join it. A hold from an epoch
    that is no longer counted releases nothing.
    """

    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        self._lock = threading.Lock()
        self._holds_released = threading.Condition(self._lock)
        self._waiting: list[Done] = []
        self._running = False
        self._thread: ThreadPoolExecutor | None = None
        self._epoch = 0  # of the holds taken now
        self._held = 0  # open holds of ``_epoch``
        self._closing = -1  # the epoch a due sync waits for, or -1
        self._closing_held = 0  # its open holds
        self.waits = 0  # syncs that waited for holds (tests, diagnostics)

    @property
    def holds(self) -> int:
        """Holds still open (that a sync would wait for), for tests and diagnostics."""
        with self._lock:
            return self._held + (self._closing_held if self._closing >= 0 else 0)

    def hold(self) -> FlushHold:
        """Say that :meth:`then` will follow (pass it the hold) or :meth:`FlushHold.release`:
        a sync due before then waits for it, briefly (see the class)."""
        with self._lock:
            self._held += 1
            return FlushHold(self, self._epoch)

    def _release(self, hold: FlushHold) -> None:
        """With the lock held: ``hold`` is let go."""
        hold._open = False
        if hold._epoch == self._epoch:
            self._held -= 1
        elif hold._epoch == self._closing:
            self._closing_held -= 1
            if self._closing_held == 0:
                self._holds_released.notify()

    def then(self, done: Done, hold: FlushHold | None = None) -> None:
        """Call ``done`` (on the flusher's thread) after a ``sync`` that starts after this
        call: with ``None``, or with the error that ``sync`` raised. ``hold``, if any, is
        released (it is this caller's, from :meth:`hold`)."""
        with self._lock:
            self._waiting.append(done)
            if hold is not None and hold._open:
                self._release(hold)
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
                if self._waiting and self._held:
                    self._wait_for_holds()
                group, self._waiting = self._waiting, []
                if not group:
                    self._running = False
                    return
            error: Exception | None = None
            try:
                self._sync()
            except Exception as exc:
                error = exc
            for done in group:
                try:
                    done(error)
                except Exception:
                    log.exception("a flush callback failed")

    def _wait_for_holds(self) -> None:
        """With the lock held: close the current epoch and wait for its holds."""
        self.waits += 1
        self._closing, self._closing_held = self._epoch, self._held
        self._epoch += 1
        self._held = 0
        deadline = time.monotonic() + HOLD_WAIT
        while self._closing_held > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._holds_released.wait(left)
        self._closing = -1

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
