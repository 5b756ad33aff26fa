"""Blob store over a local directory: atomic writes, durable one by one or as a group."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Literal, TypeVar

from fieldreport.storage.blobs.base import (
    CHUNK_SIZE,
    BlobCheck,
    BlobNotFound,
    BlobSource,
    BlobStoreError,
    FlushCounts,
    FlushDone,
    WrittenBlob,
    check_key,
    checked_bytes,
    file_chunks,
)
from fieldreport.storage.blobs.draft import Draft, fsync_dir
from fieldreport.storage.blobs.flush import GroupFlush, SyncFs, libc_syncfs

__all__ = ["SMALL_BLOB", "LocalBlobStore", "fsync_dir"]


#: A streamed blob up to this size is gathered in memory and written in one trip to a
#: worker thread; a larger one is written as it arrives.
SMALL_BLOB = 1024 * 1024

T = TypeVar("T")


async def _on_thread(func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` on the default executor's threads. If the caller is cancelled, the
    call still finishes before the cancellation goes on: a draft is never cleaned up
    while a thread still writes to it."""
    future = asyncio.get_running_loop().run_in_executor(None, func, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait((future,))
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # retrieved: it is the caller's cancellation that goes on
        raise


class LocalBlobStore:
    """Blobs as files under ``root``.

    A write goes to a temporary file in ``root/.tmp`` and is renamed into place, so a blob
    is either absent or complete. :meth:`create` (a fresh key, read by nobody before the
    caller's flush and commit) writes the file in place instead, created exclusively:
    no temporary file, no rename. ``put_*`` also fsync the file and its directory before
    returning. :meth:`write` and :meth:`create` do not; :meth:`flush` then makes every blob
    written before it durable with one ``syncfs(2)`` of the root's filesystem for all
    concurrent callers (:mod:`.flush`): data, inodes and directory entries alike. Once a
    syncfs has failed, every later flush fails as well. Where there is no ``syncfs``
    (``syncfs=None``), they fsync like ``put_*`` (the file, its directory and any
    directory created for it) and :meth:`flush` has nothing left to do.

    ``root`` must be one filesystem (no other filesystem mounted below it).
    """

    def __init__(self, root: Path, *, syncfs: SyncFs | Literal["auto"] | None = "auto") -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)
        # Hot paths build file names as strings (no Path objects).
        self._root = str(self.root)
        self._prefix = self._root + os.sep
        self._tmp_prefix = str(self._tmp) + os.sep
        self._syncfs = libc_syncfs() if syncfs == "auto" else syncfs
        self._group = GroupFlush(self._sync_root)
        # Blobs written to be made durable by a group flush (counted on the event loop), and
        # how many of them the last successful syncfs covered (set on the flusher's thread).
        self._blobs_written = 0
        self._blobs_flushed = 0
        # Held open so that syncfs reports every writeback error since the store opened.
        self._root_fd: int | None = None
        self._failed: OSError | None = None
        self._close_fd: weakref.finalize[[int], LocalBlobStore] | None = None
        if self._syncfs is not None:
            self._open_root()

    def _open_root(self) -> int:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        self._root_fd = fd
        self._close_fd = weakref.finalize(self, os.close, fd)
        return fd

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    # -- writes ------------------------------------------------------------------------

    async def write(self, key: str, source: BlobSource, *, sha256: bool = False) -> WrittenBlob:
        durable = self._syncfs is None
        written = await self._store(key, source, sha256=sha256, durable=durable, fresh=False)
        if not durable:
            self._blobs_written += 1
        return written

    async def create(
        self,
        key: str,
        source: BlobSource,
        *,
        sha256: bool = False,
        check: BlobCheck | None = None,
    ) -> WrittenBlob:
        durable = self._syncfs is None
        written = await self._store(
            key, source, sha256=sha256, durable=durable, fresh=True, check=check
        )
        if not durable:
            self._blobs_written += 1
        return written

    async def flush(self) -> None:
        if self._syncfs is None:
            return
        try:
            await self._group.flush()
        except OSError as exc:
            raise _store_error("cannot flush blobs to disk", exc) from exc

    def after_flush(self, done: FlushDone) -> None:
        if self._syncfs is None:
            done(None)  # every write was fsynced before it returned
            return
        self._group.then(functools.partial(_flushed, done))

    def flush_counts(self) -> FlushCounts:
        group = self._group
        return FlushCounts(group.syncs, group.syncs_failed, group.waits, self._blobs_flushed)

    def _sync_root(self) -> None:
        assert self._syncfs is not None
        if self._failed is not None:
            raise OSError(self._failed.errno, self._failed.strerror)
        fd = self._root_fd if self._root_fd is not None else self._open_root()
        covered = self._blobs_written  # every blob written before the sync starts
        try:
            self._syncfs(fd)
        except OSError as exc:
            # A writeback error names no file: it may belong to a blob whose writer has not
            # flushed yet, and a later syncfs would not report it again. So every later
            # flush fails too, until the store is opened again (a restart), like PostgreSQL
            # after a failed fsync.
            self._failed = exc
            raise
        self._blobs_flushed = covered

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return (await self._store(key, chunks, sha256=False, durable=True, fresh=False)).size

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self._store(key, data, sha256=False, durable=True, fresh=False)

    async def put_file(self, key: str, path: Path) -> int:
        return await self.put_stream(key, file_chunks(path))

    async def _store(
        self,
        key: str,
        source: BlobSource,
        *,
        sha256: bool,
        durable: bool,
        fresh: bool,
        check: BlobCheck | None = None,
    ) -> WrittenBlob:
        """Write ``source`` (in place when ``fresh``, else to a temporary file renamed into
        place): one trip to a worker thread for bytes, a file, or a stream that ends within
        :data:`SMALL_BLOB`; larger streams as they come. ``check`` runs in the same trip,
        before anything is written."""
        path = self._prefix + check_key(key)
        if fresh:
            draft = Draft(self._root, path, None, sha256)
        else:
            draft = Draft(self._root, f"{self._tmp_prefix}{uuid.uuid4().hex}.part", path, sha256)
        try:
            if check is not None:
                data = checked_bytes(source)  # raises before anything is opened
                return await _on_thread(draft.checked_write_all, data, check, durable)
            if isinstance(source, bytes):
                return await _on_thread(draft.write_all, (source,), durable)
            if not isinstance(source, AsyncIterable):
                return await _on_thread(draft.copy_file, source, durable)
            try:
                head, rest = await _gather_head(source, SMALL_BLOB)
                if rest is None:
                    return await _on_thread(draft.write_all, head, durable)
                await _on_thread(draft.write, head)
                async for batch in rest:
                    await _on_thread(draft.write, batch)
                return await _on_thread(draft.commit, durable)
            except BaseException:
                await _on_thread(draft.discard)
                raise
        except asyncio.CancelledError:
            if fresh:  # complete or not, the caller never learns of this blob: remove it
                await _on_thread(draft.discard)
            raise
        except OSError as exc:
            raise _store_error("cannot write blob", exc) from exc

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        try:
            while True:
                chunk = await asyncio.to_thread(fh.read, CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

    async def get_bytes(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def get_many(self, keys: list[str]) -> dict[str, bytes]:
        def read_all() -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    found[key] = self._path(key).read_bytes()
            return found

        return await asyncio.to_thread(read_all)

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def modified(self, key: str) -> datetime:
        try:
            mtime = (await asyncio.to_thread(self._path(key).stat)).st_mtime
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        return datetime.fromtimestamp(mtime, UTC)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        base = self.root / prefix if prefix else self.root

        def walk() -> list[str]:
            found: list[str] = []
            if not base.exists():
                return found
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if d != ".tmp"]
                for name in filenames:
                    found.append(Path(dirpath, name).relative_to(self.root).as_posix())
            return sorted(found)

        for key in await asyncio.to_thread(walk):
            yield key

    async def sweep_partial(self, older_than: float, *, dry_run: bool) -> tuple[int, int]:
        """Delete the ``.tmp/*.part`` files of writes that never finished (the process died
        between writing and renaming) whose last write is more than ``older_than`` seconds
        old; a write in progress keeps touching its file, so a grace of minutes is safe."""
        cutoff = time.time() - older_than

        def sweep() -> tuple[int, int]:
            found = errors = 0
            with os.scandir(self._tmp) as entries:
                for entry in entries:
                    if not entry.name.endswith(".part"):
                        continue
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # finished (renamed) or removed meanwhile
                    if not S_ISREG(stat.st_mode) or stat.st_mtime >= cutoff:
                        continue
                    found += 1
                    if dry_run:
                        continue
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass
                    except OSError:
                        errors += 1
            return found, errors

        return await _on_thread(sweep)

    async def close(self) -> None:
        await asyncio.to_thread(self._group.close)  # a running flush ends first
        if self._close_fd is not None:
            self._close_fd()  # reopened if the store is flushed again
            self._root_fd = self._close_fd = None


def _flushed(done: FlushDone, error: Exception | None) -> None:
    if isinstance(error, OSError):
        error = _store_error("cannot flush blobs to disk", error)
    done(error)


def _store_error(what: str, exc: OSError) -> BlobStoreError:
    if exc.errno == errno.ENOSPC:
        return BlobStoreError("blob store is full (no space left on device)")
    return BlobStoreError(f"{what}: {exc.strerror or exc}")


async def _gather_head(
    source: AsyncIterable[bytes], limit: int
) -> tuple[list[bytes], AsyncIterator[list[bytes]] | None]:
    """The first chunks of ``source``, up to ``limit`` bytes, and ``None`` if that was all;
    else also the rest, in batches of at least :data:`CHUNK_SIZE` bytes (one thread trip each)."""
    chunks = aiter(source)
    head: list[bytes] = []
    size = 0
    async for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, _batches(chunks)
    return head, None


async def _batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    async for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= CHUNK_SIZE:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
