"""``BlobStore.create``: a fresh key written in place (local store: no temporary file, no
rename), against the local store and a real S3 server; and what a failed, refused or
cancelled create leaves behind (nothing)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fieldreport.storage.blobs import BlobSource, BlobStore, BlobStoreError, LocalBlobStore
from fieldreport.storage.blobs.local import SMALL_BLOB
from fieldreport.storage.blobs.s3 import S3BlobStore
from tests.support.seaweed import S3Server

KEY = "reports/1/2026-11/6f1c7a52-0d2e-4a8b-9a55-3b1f2f9e0c11.screenshot.png"


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    blobs: BlobStore
    if request.param == "local":
        blobs = LocalBlobStore(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        blobs = S3BlobStore(
            f"{server.url}/test-{uuid.uuid4().hex}",
            endpoint=server.endpoint,
            region=server.region,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
    yield blobs
    await blobs.close()


def _payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


async def _chunks(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def _files(store: LocalBlobStore) -> list[str]:
    return sorted(
        p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()
    )


@pytest.mark.parametrize("kind", ["bytes", "file", "small stream", "large stream", "empty"])
async def test_create_then_flush(store: BlobStore, kind: str) -> None:
    data = (
        b"" if kind == "empty" else _payload(SMALL_BLOB + 300_000 if "large" in kind else 150_000)
    )
    source: BlobSource = {
        "bytes": lambda: data,
        "empty": lambda: data,
        "file": lambda: io.BytesIO(data),
        "small stream": lambda: _chunks(data, 20_000),
        "large stream": lambda: _chunks(data, 64 * 1024),
    }[kind]()
    blob = await store.create(KEY, source, sha256=True)
    assert (blob.size, blob.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    await store.flush()
    assert await store.get_bytes(KEY) == data
    assert [k async for k in store.list("reports")] == [KEY]
    if isinstance(store, LocalBlobStore):
        assert os.listdir(store.root / ".tmp") == []  # written in place


async def test_create_without_syncfs_is_durable_on_return(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs", syncfs=None)
    await store.create(KEY, b"shot")
    assert (store.root / KEY).read_bytes() == b"shot"


async def test_create_refuses_a_key_that_exists_and_keeps_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.create(KEY, b"first")
    with pytest.raises(BlobStoreError, match="File exists"):
        await store.create(KEY, b"second")
    assert await store.get_bytes(KEY) == b"first"


async def test_failing_create_leaves_nothing(store: BlobStore) -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(7):  # past the local store's in-memory head and one S3 part
            yield _payload(1024 * 1024)
        raise SourceBroke

    with pytest.raises(SourceBroke):
        await store.create(KEY, broken(), sha256=True)
    await store.flush()
    assert not await store.exists(KEY)
    assert [k async for k in store.list("")] == []


async def test_create_into_a_full_disk_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if len(data) > 1000:
            real(fd, bytes(data)[:1000])  # part of it lands, then the disk is full
            raise OSError(28, os.strerror(28))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(BlobStoreError, match="full"):
        await store.create(KEY, _payload(50_000))
    assert _files(store) == []


class _SlowFile(io.BytesIO):
    """A file whose first read waits until the test lets it go on (a slow worker thread)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reading = threading.Event()
        self.go_on = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        self.reading.set()
        assert self.go_on.wait(10)
        return super().read(size)


@pytest.mark.parametrize("method", ["create", "write"])
async def test_a_cancelled_caller_leaves_nothing_behind(tmp_path: Path, method: str) -> None:
    """Cancelled while a worker thread writes: the write finishes first (its file is never
    pulled from under it), then the in-place blob is removed; a write's temporary file too."""
    store = LocalBlobStore(tmp_path / "blobs")
    source = _SlowFile(_payload(300_000))
    task = asyncio.create_task(getattr(store, method)(KEY, source, sha256=True))
    assert await asyncio.to_thread(source.reading.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the thread
    source.go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    if method == "create":
        assert _files(store) == []
    else:  # a write that completed stays (its key may be another writer's): no temp file
        assert os.listdir(store.root / ".tmp") == []
