"""Writing one blob file of the local store: the blocking part, run on a worker thread.

Plain ``os`` calls on a file descriptor (open, write, close: no buffered file object, no
``fstat``/``lseek``/``ioctl`` that ``open()`` adds), and directories are created only
when a call fails for the lack of one, so a write into an existing directory costs no
``mkdir``. Two ways to write:

- through a temporary file in the store's ``.tmp`` directory, renamed over the key when
  complete: for keys that may exist already or be read while being written;
- in place, created with ``O_EXCL`` at the key's own path: for a fresh key that nothing
  reads before the writer's flush and commit name it. A crash may leave a partial file
  there, which no row names (the orphan sweep removes it, as it removes any blob whose
  report never committed).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
from collections.abc import Callable, Iterable
from typing import IO, TypeVar

from fieldreport.storage.blobs.base import CHUNK_SIZE, WrittenBlob

T = TypeVar("T")

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    written = os.write(fd, data)
    if written < len(data):  # a short write (a signal, a nearly full disk): go on
        view = memoryview(data)
        while written < len(view):
            written += os.write(fd, view[written:])


class Draft:
    """One blob being written to ``path``: a temporary file renamed to ``target`` on
    :meth:`commit`, or (``target=None``) the key's own path, created exclusively.

    ``root`` is the store's directory: directories created on the way below it are made
    durable with the blob when ``durable`` (no ``syncfs``). Every method runs on a worker
    thread, one at a time."""

    __slots__ = ("created", "digest", "fd", "new_dirs", "path", "root", "size", "target")

    def __init__(self, root: str, path: str, target: str | None, sha256: bool) -> None:
        self.root = root
        self.path = path
        self.target = target
        self.digest = hashlib.sha256() if sha256 else None
        self.size = 0
        self.fd = -1
        self.created = False  # this draft made the file at ``path`` (so may remove it)
        self.new_dirs = False

    def _open(self) -> int:
        try:
            fd = os.open(self.path, _NEW_FILE, 0o666)
        except FileNotFoundError:
            self._make_parent(self.path)
            fd = os.open(self.path, _NEW_FILE, 0o666)
        self.fd = fd
        self.created = True
        return fd

    def _make_parent(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.new_dirs = True

    def write(self, chunks: Iterable[bytes | memoryview]) -> None:
        fd = self.fd if self.fd >= 0 else self._open()
        digest = self.digest
        for chunk in chunks:
            self.size += len(chunk)
            if digest is not None:
                digest.update(chunk)
            _write_all(fd, chunk)

    def write_file(self, source: IO[bytes]) -> None:
        if type(source) is io.BytesIO:  # not a subclass, which may read differently
            # An upload held in memory: its bytes as they are (``getvalue`` shares the
            # buffer, no copy). Not ``getbuffer()``: a write error (a full disk) would leave
            # a view of it alive in the traceback, and closing the upload then fails too.
            self.write((source.getvalue(),))
            return
        source.seek(0)
        self.write(iter(functools.partial(source.read, CHUNK_SIZE), b""))

    def commit(self, durable: bool) -> WrittenBlob:
        """Close (``durable``: after an fsync), rename into place if a temporary file, and
        (``durable``) fsync the directory that names it, and those of new directories."""
        fd = self.fd if self.fd >= 0 else self._open()
        self.fd = -1
        try:
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        final = self.path
        if self.target is not None:
            final = self.target
            try:
                os.replace(self.path, final)
            except FileNotFoundError:
                self._make_parent(final)
                os.replace(self.path, final)
            self.created = False  # renamed: nothing of this draft's is left to remove
        if durable:
            self._sync_dirs(os.path.dirname(final))
        return WrittenBlob(self.size, self.digest.hexdigest() if self.digest else None)

    def _sync_dirs(self, directory: str) -> None:
        fsync_dir(directory)
        if not self.new_dirs:
            return
        # A directory created on the way is named by its parent: up to the store's root.
        while directory != self.root and len(directory) > len(self.root):
            directory = os.path.dirname(directory)
            fsync_dir(directory)

    def write_all(self, chunks: Iterable[bytes], durable: bool) -> WrittenBlob:
        """:meth:`write` then :meth:`commit` (one trip to a worker thread); discards on failure."""
        return self._whole(self.write, chunks, durable)

    def checked_write_all(
        self, data: bytes, check: Callable[[bytes], None], durable: bool
    ) -> WrittenBlob:
        """``check(data)`` (what it raises goes to the caller, nothing written), then
        :meth:`write_all` of ``data``."""
        check(data)
        return self.write_all((data,), durable)

    def copy_file(self, source: IO[bytes], durable: bool) -> WrittenBlob:
        """:meth:`write_file` then :meth:`commit`; discards on failure."""
        return self._whole(self.write_file, source, durable)

    def _whole(self, fill: Callable[[T], None], source: T, durable: bool) -> WrittenBlob:
        try:
            fill(source)
            return self.commit(durable)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close, and remove the file this draft created at ``path``: the temporary file
        (gone already once renamed), or the in-place blob even when complete."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
        if self.created:
            self.created = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
