"""The BlobStore contract, run against the local-directory store and a real S3 server.

The session-scoped ``s3_server`` fixture (SeaweedFS) comes from ``tests/conftest.py``,
which re-exports it from :mod:`tests.support.fixtures_s3`.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
from obstore.store import S3Store

from fieldreport.storage.blobs import (
    BlobNotFound,
    BlobSource,
    BlobStore,
    BlobStoreError,
    LocalBlobStore,
    WrittenBlob,
    open_blob_store,
)
from fieldreport.storage.blobs.s3 import S3BlobStore
from tests.support.seaweed import S3Server

MiB = 1024 * 1024


def _s3_store(server: S3Server, prefix: str | None = None) -> S3BlobStore:
    url = f"{server.url}/{prefix}" if prefix else server.url
    return S3BlobStore(
        url,
        endpoint=server.endpoint,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Each backend, empty: a fresh directory, or a fresh key prefix in the S3 bucket."""
    blobs: BlobStore
    if request.param == "local":
        blobs = LocalBlobStore(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        blobs = _s3_store(server, f"test-{uuid.uuid4().hex}")
    assert isinstance(blobs, BlobStore)
    yield blobs
    await blobs.close()


def _payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def _chunks(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


async def _read_all(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.stream(key)])


async def _keys(blobs: BlobStore, prefix: str) -> list[str]:
    return [key async for key in blobs.list(prefix)]


# -- basic operations ---------------------------------------------------------------


async def test_put_get_roundtrip(store: BlobStore) -> None:
    await store.put_bytes("reports/1/meta.json", b'{"ok": true}')

    assert await store.get_bytes("reports/1/meta.json") == b'{"ok": true}'
    assert await _read_all(store, "reports/1/meta.json") == b'{"ok": true}'
    assert await store.size("reports/1/meta.json") == 12
    assert await store.exists("reports/1/meta.json")
    assert not await store.exists("reports/1/other.json")


async def test_overwrite_replaces_content(store: BlobStore) -> None:
    await store.put_bytes("k", b"first version")
    await store.put_bytes("k", b"second")

    assert await store.get_bytes("k") == b"second"
    assert await store.size("k") == 6


async def test_empty_blob(store: BlobStore) -> None:
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    assert await store.put_stream("empty", nothing()) == 0
    assert await store.get_bytes("empty") == b""
    assert await _read_all(store, "empty") == b""
    assert await store.size("empty") == 0
    assert await store.exists("empty")


async def test_streaming_put_and_read_multi_mb(store: BlobStore) -> None:
    # 12 MiB in odd-sized chunks: several S3 multipart parts, not part-aligned.
    data = _payload(12 * MiB + 12345, seed=1)

    written = await store.put_stream("attachments/big.bin", _chunks(data, 300_001))

    assert written == len(data)
    assert await store.size("attachments/big.bin") == len(data)
    digest = hashlib.sha256()
    read = 0
    async for chunk in store.stream("attachments/big.bin"):
        assert 0 < len(chunk) <= 16 * MiB
        digest.update(chunk)
        read += len(chunk)
    assert read == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_streaming_put_of_small_blob(store: BlobStore) -> None:
    data = _payload(100_000, seed=2)
    assert await store.put_stream("small", _chunks(data, 7_000)) == len(data)
    assert await store.get_bytes("small") == data


async def test_put_file(store: BlobStore, tmp_path: Path) -> None:
    data = _payload(6 * MiB + 1, seed=3)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)

    assert await store.put_file("files/upload.bin", source) == len(data)
    assert await store.get_bytes("files/upload.bin") == data


async def test_delete(store: BlobStore) -> None:
    await store.put_bytes("doomed", b"x")
    await store.delete("doomed")

    assert not await store.exists("doomed")
    with pytest.raises(BlobNotFound):
        await store.get_bytes("doomed")
    await store.delete("doomed")  # already gone: not an error
    await store.delete("never/existed")


async def test_list_under_prefix(store: BlobStore) -> None:
    for key in ["a/1", "a/2", "a/sub/3", "ab/4", "b/5"]:
        await store.put_bytes(key, key.encode())

    assert sorted(await _keys(store, "a")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(await _keys(store, "a/")) == ["a/1", "a/2", "a/sub/3"]
    assert sorted(await _keys(store, "a/sub")) == ["a/sub/3"]
    assert sorted(await _keys(store, "")) == ["a/1", "a/2", "a/sub/3", "ab/4", "b/5"]
    assert await _keys(store, "nothing-here") == []


async def test_missing_key(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.get_bytes("missing/blob")
    with pytest.raises(BlobNotFound):
        await store.size("missing/blob")
    with pytest.raises(BlobNotFound):
        await _read_all(store, "missing/blob")
    assert not await store.exists("missing/blob")


@pytest.mark.parametrize("key", ["../x", "/abs", "a/../b", "a//b", "", ".hidden", "a\\b"])
async def test_unsafe_keys_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.put_bytes(key, b"x")
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.put_stream(key, _chunks(b"x", 1))
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.get_bytes(key)
    with pytest.raises(ValueError, match="unsafe blob key"):
        await _read_all(store, key)
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.size(key)
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="unsafe blob key"):
        await store.delete(key)


async def test_failing_source_stores_nothing(store: BlobStore) -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(7):  # past one S3 part, so the multipart upload has begun
            yield _payload(MiB)
        raise SourceBroke

    with pytest.raises(SourceBroke):
        await store.put_stream("half", broken())
    assert not await store.exists("half")
    assert await _keys(store, "") == []


@pytest.mark.parametrize("kind", ["bytes", "file", "small stream", "large stream"])
async def test_write_then_flush(store: BlobStore, kind: str) -> None:
    data = _payload(3 * MiB if kind == "large stream" else 150_000, seed=7)
    source: BlobSource = {
        "bytes": lambda: data,
        "file": lambda: io.BytesIO(data),
        "small stream": lambda: _chunks(data, 20_000),
        "large stream": lambda: _chunks(data, 64 * 1024),
    }[kind]()
    blob = await store.write("reports/1/r/attachment-1", source, sha256=True)
    assert blob == WrittenBlob(len(data), hashlib.sha256(data).hexdigest())
    await store.flush()
    assert await _read_all(store, "reports/1/r/attachment-1") == data
    assert (await store.write("sessions/1/s/b", b"batch")).sha256 is None  # only when asked


async def test_failing_write_source_stores_nothing(store: BlobStore) -> None:
    class SourceBroke(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(7):  # past the local store's in-memory head and one S3 part
            yield _payload(MiB)
        raise SourceBroke

    with pytest.raises(SourceBroke):
        await store.write("half", broken(), sha256=True)
    await store.flush()
    assert not await store.exists("half")
    assert await _keys(store, "") == []


# -- memory -------------------------------------------------------------------------


class _PeakRSS:
    """Samples this process's resident set size in a thread; ``peak`` is the maximum."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.base: int = self._proc.memory_info().rss
        self.peak: int = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / MiB


@pytest.mark.slow
async def test_streaming_100_mib_uses_bounded_memory(store: BlobStore) -> None:
    total = 100 * MiB
    chunk_size = 256 * 1024
    rng = random.Random(4)

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(total // chunk_size):
            yield rng.randbytes(chunk_size)  # a fresh buffer each time, like a socket

    # Warm up (first request, thread pools) outside the measurement.
    await store.put_bytes("warmup", b"x")
    assert await store.get_bytes("warmup") == b"x"

    with _PeakRSS() as rss:
        written = await store.put_stream("huge.bin", generated())
        read = 0
        async for chunk in store.stream("huge.bin"):
            read += len(chunk)

    assert written == read == total
    assert rss.growth_mib < 20, f"RSS grew by {rss.growth_mib:.1f} MiB streaming 100 MiB"


# -- S3 specifics -------------------------------------------------------------------


def test_s3_url_parsing() -> None:
    blobs = S3BlobStore("s3://bucket/some/prefix/", endpoint="http://127.0.0.1:1")
    assert (blobs.bucket, blobs.prefix, blobs.url) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix",
    )
    assert S3BlobStore("s3://bucket", endpoint="http://127.0.0.1:1").url == "s3://bucket"

    for bad in ["s3:///prefix", "http://bucket/x", "s3://bucket/../x", "s3://user:pw@bucket/x"]:
        with pytest.raises(ValueError):
            S3BlobStore(bad, endpoint="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="both"):
        S3BlobStore("s3://bucket", endpoint="http://127.0.0.1:1", access_key_id="only-one")


def test_open_blob_store_dispatches_s3() -> None:
    blobs = open_blob_store(
        "s3://bucket/p",
        s3_endpoint="http://127.0.0.1:1",
        s3_region="eu-west-1",
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    assert isinstance(blobs, S3BlobStore)
    assert blobs.url == "s3://bucket/p"


async def test_s3_keys_live_under_the_url_prefix(s3_server: S3Server) -> None:
    prefix = f"scoped-{uuid.uuid4().hex}"
    scoped = _s3_store(s3_server, f"{prefix}/blobs")
    whole_bucket = _s3_store(s3_server)

    await scoped.put_bytes("reports/7/a.txt", b"hello")

    assert await _keys(whole_bucket, prefix) == [f"{prefix}/blobs/reports/7/a.txt"]
    assert await whole_bucket.get_bytes(f"{prefix}/blobs/reports/7/a.txt") == b"hello"
    assert await _keys(scoped, "reports") == ["reports/7/a.txt"]


async def test_s3_bad_credentials_are_a_clear_store_error(s3_server: S3Server) -> None:
    blobs = S3BlobStore(
        s3_server.url,
        endpoint=s3_server.endpoint,
        region=s3_server.region,
        access_key_id="wrong",
        secret_access_key="wrong",
    )
    with pytest.raises(BlobStoreError, match="denied") as excinfo:
        await blobs.put_bytes("k", b"x")
    assert "Debug source" not in str(excinfo.value)
    with pytest.raises(BlobStoreError, match="denied"):
        await blobs.get_bytes("k")
    with pytest.raises(BlobStoreError, match="denied"):
        await blobs.exists("k")


async def test_s3_missing_bucket_is_not_a_missing_blob(s3_server: S3Server) -> None:
    blobs = S3BlobStore(
        "s3://no-such-bucket-here",
        endpoint=s3_server.endpoint,
        region=s3_server.region,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
    )
    with pytest.raises(BlobStoreError, match="NoSuchBucket"):
        await blobs.get_bytes("k")
    with pytest.raises(BlobStoreError, match="NoSuchBucket"):
        await _keys(blobs, "")


@pytest.fixture
def unreachable_s3() -> Iterator[S3BlobStore]:
    blobs = S3BlobStore(
        "s3://bucket", endpoint="http://127.0.0.1:9", access_key_id="k", secret_access_key="s"
    )
    # Fail fast instead of retrying with backoff for minutes.
    blobs._store = S3Store(
        "bucket",
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )
    yield blobs


async def test_s3_unreachable_is_a_store_error(unreachable_s3: S3BlobStore) -> None:
    with pytest.raises(BlobStoreError, match="failed"):
        await unreachable_s3.put_bytes("k", b"x")
    with pytest.raises(BlobStoreError, match="failed"):
        await unreachable_s3.put_stream("k", _chunks(_payload(6 * MiB), MiB))
    with pytest.raises(BlobStoreError, match="failed"):
        await unreachable_s3.exists("k")
    with pytest.raises(BlobStoreError, match="failed"):
        await _read_all(unreachable_s3, "k")


async def test_get_many_reads_present_blobs_and_leaves_out_missing_ones(store: BlobStore) -> None:
    await store.put_bytes("reports/1/a.png", b"first")
    await store.put_bytes("reports/1/b.png", b"second")

    found = await store.get_many(["reports/1/a.png", "reports/1/gone.png", "reports/1/b.png"])

    assert found == {"reports/1/a.png": b"first", "reports/1/b.png": b"second"}
    assert await store.get_many([]) == {}


async def test_create_runs_its_check_before_writing(store: BlobStore) -> None:
    seen: list[bytes] = []

    def accept(data: bytes | memoryview) -> None:
        seen.append(bytes(data))

    def refuse(data: bytes | memoryview) -> None:
        raise ValueError("no")

    blob = await store.create("reports/c/ok.bin", io.BytesIO(b"data"), sha256=True, check=accept)
    assert seen == [b"data"] and blob.size == 4
    assert await store.get_bytes("reports/c/ok.bin") == b"data"
    with pytest.raises(ValueError, match="no"):
        await store.create("reports/c/refused.bin", b"other", check=refuse)
    assert await _keys(store, "reports/c") == ["reports/c/ok.bin"]
    with pytest.raises(TypeError):  # a check reads bytes held in memory only
        await store.create("reports/c/stream.bin", _chunks(b"x", 1), check=accept)
