"""Batch writers of several processes on one SQLite file take turns through a file lock.

SQLite lets one writer in at a time, and a connection that finds the database locked
waits in its busy handler: it sleeps (1, 2, 5, 10 ... up to 100 ms at a time) and looks
again. With two ``fieldreport serve`` processes (or a server and ``fieldreport worker``)
under load, each :class:`~fieldreport.storage.writer.BatchWriter` runs one transaction
after another as long as rows are queued. The process that holds the lock commits,
takes its next batch and begins again within microseconds, while the other sleeps through
its back-off: it can wait for seconds (p99 of full-stack events with 2 processes went
from ~0.1 to 1.7 s once the writer drained its queue on its own thread).

So each writer first takes an exclusive ``flock`` on a lock file next to the database
(``<database>-writer.lock``) and holds it for its transaction. A writer blocked on it
sleeps in the kernel and is woken as the holder lets go, while the holder is still
answering its callers and taking its next batch: the processes alternate. Within one
process the lock is never contended (one writer thread). It orders the batch writers
only; every other write still waits in SQLite's busy handler as before, and SQLite's own
lock is what keeps the data safe. A lock file that cannot be opened (read-only
directory) leaves the writer as it was, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Appended to the database file's path for the lock file's.
SUFFIX = "-writer.lock"


class WriterTurns:
    """The lock file of the batch writers on one SQLite database file (``None``: no turns,
    for PostgreSQL or an in-memory database)."""

    def __init__(self, database_file: str | None) -> None:
        self.path = database_file + SUFFIX if database_file else None
        self._fd: int | None = None
        self._failed = False

    def _open(self) -> int | None:
        if self._fd is None and self.path is not None and not self._failed:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                self._failed = True
                log.warning(
                    "cannot open the writers' lock file %s (%s): batch writers of several "
                    "processes on this database will not take turns",
                    self.path,
                    exc,
                )
        return self._fd

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the writers' lock (blocking, in the calling thread) for the block."""
        fd = self._open()
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
