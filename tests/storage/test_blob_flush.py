"""The local store's group flush: write without fsync, then one syncfs for many writers.

Real files in a real directory and, where it exists, the real ``syncfs(2)``; the syncfs is
wrapped to count and order its calls. A power cut cannot be simulated here: what is checked
is the contract the durability rests on (every flush returns after a syncfs that started
after the caller's write returned), the error paths and the fallback without syncfs.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from fieldreport.storage.blobs import BlobStoreError, LocalBlobStore, local
from fieldreport.storage.blobs.base import FlushCounts
from fieldreport.storage.blobs.flush import SyncFs, libc_syncfs
from fieldreport.storage.blobs.local import SMALL_BLOB

needs_syncfs = pytest.mark.skipif(libc_syncfs() is None, reason="no syncfs(2) on this system")


class Journal:
    """An ordered log of what happened, appended from the loop and from worker threads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.syncs = 0

    def add(self, kind: str, n: int) -> int:
        with self.lock:
            self.events.append((kind, n))
            return len(self.events) - 1

    def syncfs(self, real: SyncFs | None, delay: float = 0.0) -> SyncFs:
        def call(fd: int) -> None:
            with self.lock:
                self.syncs += 1
                n = self.syncs
            self.add("sync-start", n)
            time.sleep(delay)  # a slow disk: writers pile up behind the running flush
            if real is not None:
                real(fd)
            self.add("sync-end", n)

        return call


@needs_syncfs
async def test_concurrent_writers_share_flushes_and_each_is_covered(tmp_path: Path) -> None:
    journal = Journal()
    store = LocalBlobStore(tmp_path / "blobs", syncfs=journal.syncfs(libc_syncfs(), 0.02))
    writers = 60

    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.001)  # arrive spread over a few flushes
        await store.write(f"reports/1/r{i}/screenshot.png", os.urandom(2000 + i))
        journal.add("written", i)
        await store.flush()
        journal.add("flushed", i)

    await asyncio.gather(*(one(i) for i in range(writers)))

    assert 1 < journal.syncs < writers / 3, journal.syncs
    at = {event: index for index, event in enumerate(journal.events)}
    for i in range(writers):
        written, flushed = at[("written", i)], at[("flushed", i)]
        covering = [
            n
            for n in range(1, journal.syncs + 1)
            if written < at[("sync-start", n)] and at[("sync-end", n)] < flushed
        ]
        assert covering, f"writer {i}: no syncfs started after its write and ended before it"
    for i in range(writers):
        assert (store.root / f"reports/1/r{i}/screenshot.png").stat().st_size == 2000 + i
    # /metrics' counts: every syncfs, every caller answered, every blob written before one
    assert store.flush_counts() == FlushCounts(journal.syncs, 0, writers, writers)
    await store.close()


@needs_syncfs
async def test_a_lone_flush_runs_at_once(tmp_path: Path) -> None:
    journal = Journal()
    store = LocalBlobStore(tmp_path / "blobs", syncfs=journal.syncfs(libc_syncfs()))
    await store.write("a/b", b"x")
    began = time.monotonic()
    await store.flush()
    assert journal.syncs == 1
    assert time.monotonic() - began < 1.0  # no timer waiting for company
    await store.flush()  # each flush syncs after its call, even with nothing new
    assert journal.syncs == 2
    await store.close()
    await store.flush()  # reopens the root after close
    assert journal.syncs == 3


def test_real_syncfs_reports_failure() -> None:
    syncfs = libc_syncfs()
    if syncfs is None:
        pytest.skip("no syncfs(2) on this system")
    with pytest.raises(OSError) as caught:
        syncfs(-1)  # the return value is checked, errno read
    assert caught.value.errno == errno.EBADF


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.EIO, "cannot flush blobs to disk"), (errno.ENOSPC, "blob store is full")],
)
async def test_a_failed_syncfs_fails_every_flush_it_covered(
    tmp_path: Path, code: int, message: str
) -> None:
    def failing(fd: int) -> None:
        time.sleep(0.02)
        raise OSError(code, os.strerror(code))

    store = LocalBlobStore(tmp_path / "blobs", syncfs=failing)

    async def one(i: int) -> None:
        await store.write(f"k/{i}", b"data")
        await store.flush()

    results = await asyncio.gather(*(one(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, BlobStoreError) and message in str(r) for r in results), results
    counts = store.flush_counts()  # nothing made durable: no flush or blob counted as done
    assert (counts.flushes, counts.waits, counts.blobs) == (0, 5, 0) and counts.failed >= 1


@needs_syncfs
async def test_after_a_failed_syncfs_every_flush_fails(tmp_path: Path) -> None:
    """The error may have been about a blob whose writer flushes only later: a second syncfs
    would not report it again, so the store refuses to call anything durable any more."""
    real = libc_syncfs()
    assert real is not None
    calls = 0

    def once_failing(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    store = LocalBlobStore(tmp_path / "blobs", syncfs=once_failing)
    await store.write("k/early", b"written before the error, flushed after it")
    with pytest.raises(BlobStoreError, match="Input/output error"):
        await store.flush()
    for _ in range(2):
        with pytest.raises(BlobStoreError, match="cannot flush blobs to disk"):
            await store.flush()
    assert await LocalBlobStore(tmp_path / "blobs").flush() is None  # a restart: a new store


@needs_syncfs
async def test_a_cancelled_caller_does_not_cancel_the_flush(tmp_path: Path) -> None:
    journal = Journal()
    store = LocalBlobStore(tmp_path / "blobs", syncfs=journal.syncfs(libc_syncfs(), 0.05))
    await store.write("k/1", b"1")
    quitter = asyncio.create_task(store.flush())
    stayer = asyncio.create_task(store.flush())
    await asyncio.sleep(0.01)
    quitter.cancel()
    await stayer
    assert quitter.cancelled()
    assert ("sync-end", 1) in journal.events


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths ``os.fsync`` is called on, in order."""
    calls: list[str] = []
    real: Callable[[int], None] = os.fsync

    def fsync(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize("method", ["write", "create"])
async def test_without_syncfs_each_write_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    store = LocalBlobStore(tmp_path / "blobs", syncfs=None)
    root = str(store.root)
    fsyncs = _count_fsyncs(monkeypatch)
    write = getattr(store, method)
    blobs = await asyncio.gather(*(write(f"r/{i}/f", b"x" * i) for i in range(8)))
    # The file (before its rename, for write) and its directory; the directory was new: its
    # parent and the root as well (whichever writer created ``r``, each syncs the way up).
    files = [p for p in fsyncs if p.endswith((".part", "/f"))]
    assert len(files) == 8
    assert sorted(set(fsyncs) - set(files)) == sorted(
        [f"{root}/r/{i}" for i in range(8)] + [f"{root}/r", root]
    )
    assert fsyncs.count(f"{root}/r") == fsyncs.count(root) == 8
    await store.flush()  # nothing left to do
    assert len(fsyncs) == 32
    assert store.flush_counts() == FlushCounts()  # no group flush: all 0 (as on S3)
    assert [b.size for b in blobs] == list(range(8))
    assert [await store.get_bytes(f"r/{i}/f") for i in range(8)] == [b"x" * i for i in range(8)]
    fsyncs.clear()
    await write("r/1/g", b"into a directory that exists")
    assert len(fsyncs) == 2 and fsyncs[1] == f"{root}/r/1"


@needs_syncfs
async def test_with_syncfs_writes_do_not_fsync_but_put_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    fsyncs = _count_fsyncs(monkeypatch)
    await store.write("a/1", b"one")
    await store.flush()
    assert fsyncs == []
    await store.put_bytes("a/2", b"two")  # the fully synced put, for callers that don't flush
    assert len(fsyncs) == 2


@pytest.mark.parametrize("method", ["write", "create"])
async def test_small_blobs_take_one_thread_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    store = LocalBlobStore(tmp_path / "blobs", syncfs=None)
    write = getattr(store, method)
    trips = 0
    real = local._on_thread

    async def on_thread(func, /, *args):  # type: ignore[no-untyped-def]
        nonlocal trips
        trips += 1
        return await real(func, *args)

    monkeypatch.setattr(local, "_on_thread", on_thread)
    data = os.urandom(300_000)

    async def stream(chunk: int) -> AsyncIterator[bytes]:
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk]

    for n, source in enumerate((data, io.BytesIO(data), stream(16_384))):
        trips = 0
        blob = await write(f"k{n}", source, sha256=True)
        assert trips == 1, source
        assert blob.size == len(data)
        assert blob.sha256 == hashlib.sha256(data).hexdigest()

    big = os.urandom(SMALL_BLOB + 600_000)

    async def big_stream() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 16_384):
            yield big[start : start + 16_384]

    trips = 0
    blob = await write("big", big_stream(), sha256=True)
    assert blob.sha256 == hashlib.sha256(big).hexdigest()
    # streamed as it comes, batched to at least 256 KiB a trip: head, a few batches, commit
    assert 3 <= trips <= 2 + 600_000 // (256 * 1024) + 1, trips
    assert await store.get_bytes("big") == big


@needs_syncfs
async def test_after_flush_answers_on_the_flusher_thread_after_a_covering_syncfs(
    tmp_path: Path,
) -> None:
    """``after_flush`` is :meth:`flush` without waiting: the callback runs on the flusher's
    own thread once a syncfs that started after the call has ended."""
    journal = Journal()
    store = LocalBlobStore(tmp_path / "blobs", syncfs=journal.syncfs(libc_syncfs(), 0.02))
    await store.write("k/1", b"1")
    journal.add("written", 1)
    answered = threading.Event()
    seen: list[tuple[Exception | None, str]] = []

    def done(error: Exception | None) -> None:
        journal.add("flushed", 1)
        seen.append((error, threading.current_thread().name))
        answered.set()

    store.after_flush(done)
    assert await asyncio.to_thread(answered.wait, 5)
    assert seen[0][0] is None and seen[0][1].startswith("fieldreport-flush")
    at = {event: index for index, event in enumerate(journal.events)}
    assert at[("written", 1)] < at[("sync-start", 1)] < at[("sync-end", 1)] < at[("flushed", 1)]
    await store.close()


async def test_after_flush_passes_a_failed_syncfs_as_a_store_error(tmp_path: Path) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = LocalBlobStore(tmp_path / "blobs", syncfs=failing)
    got: list[Exception | None] = []
    answered = threading.Event()

    def done(error: Exception | None) -> None:
        got.append(error)
        answered.set()

    store.after_flush(done)
    assert await asyncio.to_thread(answered.wait, 5)
    assert isinstance(got[0], BlobStoreError) and "blob store is full" in str(got[0])
    await store.close()


async def test_without_syncfs_after_flush_answers_at_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", syncfs=None)
    got: list[Exception | None] = []
    store.after_flush(got.append)
    assert got == [None]  # every write was fsynced before it returned
