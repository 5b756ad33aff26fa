"""Blob store over S3-compatible object storage (AWS S3, SeaweedFS, MinIO, R2, ...).

Built on :mod:`obstore` (Rust ``object_store`` underneath). A blob is one object at
``<prefix>/<key>`` in the bucket named by the store URL ``s3://bucket/optional/prefix``.

Writes are atomic: a blob that fits in one part is a single ``PUT``; a larger one is a
multipart upload that becomes visible only when it completes (and is aborted if the
source or the upload fails). Uploads and downloads stream: at most a few parts
(``PART_SIZE``) are held in memory per transfer, whatever the blob's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlparse

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

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
    source_chunks,
)

if TYPE_CHECKING:
    from obstore import ObjectMeta
    from obstore.store import ClientConfig, S3Config

#: Size of each multipart-upload part. S3 requires every part but the last to be at
#: least 5 MiB; blobs up to this size are sent as a single PUT.
PART_SIZE = 5 * 1024 * 1024

#: Parts uploaded concurrently per blob. Bounds an upload's memory to roughly
#: ``(MAX_CONCURRENT_PARTS + 1) * PART_SIZE``.
MAX_CONCURRENT_PARTS = 2

_DEBUG_SOURCE = re.compile(r"\n\s*Debug source:.*", re.DOTALL)
_XML_ERROR = re.compile(r"<\?xml.*?</Error>", re.DOTALL)
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _no_such_bucket(exc: BaseException) -> bool:
    """Whether a "not found" error is about the bucket rather than the object."""
    return "NoSuchBucket" in str(exc)


def _describe(exc: BaseException) -> str:
    """A one-line summary of an obstore error: no debug dump, S3's XML error reduced to
    ``Code: Message``."""
    text = _DEBUG_SOURCE.sub("", str(exc))

    def s3_error(match: re.Match[str]) -> str:
        code = _XML_CODE.search(match.group(0))
        message = _XML_MESSAGE.search(match.group(0))
        return ": ".join(m.group(1) for m in (code, message) if m)

    text = _XML_ERROR.sub(s3_error, text)
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:397] + "..."
    return text or type(exc).__name__


class S3BlobStore:
    """Blobs as objects in an S3 bucket, under an optional key prefix.

    ``url`` is ``s3://bucket`` or ``s3://bucket/some/prefix``. ``endpoint`` selects an
    S3-compatible service (``http://127.0.0.1:8333``; plain http is allowed when the
    endpoint says so) and implies path-style requests. Without explicit credentials the
    standard AWS environment variables / instance credentials are used.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3":
            raise ValueError(f"not an s3:// URL: {url!r}")
        if not parsed.hostname or parsed.username or parsed.password or parsed.port:
            raise ValueError(f"S3 blob store URL must be s3://bucket[/prefix], got {url!r}")
        if parsed.query or parsed.fragment:
            raise ValueError(f"S3 blob store URL must not have a query or fragment: {url!r}")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both the S3 access key id and secret access key, or neither")

        self.bucket = parsed.netloc
        prefix = parsed.path.strip("/")
        self.prefix = check_key(prefix) if prefix else ""
        self.url = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint = endpoint

        config: S3Config = {}
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        if region:
            config["region"] = region
        if access_key_id is not None and secret_access_key is not None:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        client_options: ClientConfig = {
            "allow_http": bool(endpoint and endpoint.lower().startswith("http://")),
            "connect_timeout": "10s",
            # Per HTTP request (a PUT, one part, a GET including its body). A GET body cut
            # off by it is resumed by obstore with a ranged GET (within its retry limit,
            # 10 by default), so a slowly consumed stream() survives it.
            "timeout": "5min",
        }
        try:
            self._store = S3Store(
                self.bucket,
                prefix=self.prefix or None,
                config=config,
                client_options=client_options,
            )
        except (ObstoreError, ValueError) as exc:
            raise BlobStoreError(
                f"invalid S3 configuration for {self.url}: {_describe(exc)}"
            ) from exc

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r}, endpoint={self.endpoint!r})"

    # -- errors ------------------------------------------------------------------------

    def _fail(self, action: str, key: str, exc: BaseException) -> NoReturn:
        where = f"{self.url}/{key}" if key else self.url
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            raise BlobStoreError(
                f"S3 {action} of {where} was denied (check the S3 credentials and bucket "
                f"permissions): {_describe(exc)}"
            ) from exc
        raise BlobStoreError(f"S3 {action} of {where} failed: {_describe(exc)}") from exc

    # -- writes ------------------------------------------------------------------------

    async def write(self, key: str, source: BlobSource, *, sha256: bool = False) -> WrittenBlob:
        """A completed PUT is already durable: the same as :meth:`put_stream`."""
        digest = hashlib.sha256() if sha256 else None
        size = await self.put_stream(key, source_chunks(source, digest))
        return WrittenBlob(size, digest.hexdigest() if digest else None)

    async def create(
        self,
        key: str,
        source: BlobSource,
        *,
        sha256: bool = False,
        check: BlobCheck | None = None,
    ) -> WrittenBlob:
        """:meth:`write` (a PUT is atomic already: a fresh key is never taken), after
        ``check`` on a worker thread."""
        if check is not None:
            await asyncio.to_thread(check, checked_bytes(source))
        return await self.write(key, source, sha256=sha256)

    async def flush(self) -> None:
        """Nothing to do: every write is durable once it returns."""
        return None

    def after_flush(self, done: FlushDone) -> None:
        """At once: every write is durable once it returns."""
        done(None)

    def flush_counts(self) -> FlushCounts:
        """No group flushes: all 0."""
        return FlushCounts()

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        source = aiter(chunks)
        # Buffer up to one part: a small blob goes up as one plain PUT (a multipart
        # upload costs three requests, and an empty one is not allowed).
        head: list[bytes] = []
        buffered = 0
        exhausted = False
        while buffered <= PART_SIZE:
            try:
                chunk = await anext(source)
            except StopAsyncIteration:
                exhausted = True
                break
            head.append(chunk)
            buffered += len(chunk)

        if exhausted:
            try:
                await obstore.put_async(self._store, key, b"".join(head), use_multipart=False)
            except (ObstoreError, OSError) as exc:
                self._fail("upload", key, exc)
            return buffered

        size = 0
        source_error: list[BaseException] = []

        async def body() -> AsyncGenerator[bytes, None]:
            nonlocal size
            for chunk in head:
                size += len(chunk)
                yield chunk
            head.clear()
            try:
                async for chunk in source:
                    size += len(chunk)
                    yield chunk
            except BaseException as exc:
                source_error.append(exc)
                raise

        stream = body()
        try:
            await obstore.put_async(
                self._store,
                key,
                stream,
                use_multipart=True,
                chunk_size=PART_SIZE,
                max_concurrency=MAX_CONCURRENT_PARTS,
            )
        except BaseException as exc:
            # obstore aborts the multipart upload, then re-raises; an error raised by
            # the caller's iterator is the caller's, so it propagates unchanged.
            if source_error and exc is source_error[0]:
                raise
            if isinstance(exc, ObstoreError | OSError):
                self._fail("upload", key, exc)
            raise
        finally:
            await stream.aclose()
        return size

    async def put_bytes(self, key: str, data: bytes) -> None:
        check_key(key)
        try:
            await obstore.put_async(
                self._store,
                key,
                data,
                chunk_size=PART_SIZE,
                max_concurrency=MAX_CONCURRENT_PARTS,
            )
        except (ObstoreError, OSError) as exc:
            self._fail("upload", key, exc)

    async def put_file(self, key: str, path: Path) -> int:
        # Through put_stream rather than obstore's own file reader: that one reads on the
        # async runtime's threads with a fresh part-sized buffer per part.
        return await self.put_stream(key, file_chunks(path))

    # -- reads -------------------------------------------------------------------------

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError as exc:
            if _no_such_bucket(exc):
                self._fail("download", key, exc)
            raise BlobNotFound(key) from exc
        except (ObstoreError, OSError) as exc:
            self._fail("download", key, exc)
        chunks = result.stream(min_chunk_size=CHUNK_SIZE)
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except (ObstoreError, OSError) as exc:
                self._fail("download", key, exc)
            yield chunk

    async def get_bytes(self, key: str) -> bytes:
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            if _no_such_bucket(exc):
                self._fail("download", key, exc)
            raise BlobNotFound(key) from exc
        except (ObstoreError, OSError) as exc:
            self._fail("download", key, exc)

    async def get_many(self, keys: list[str]) -> dict[str, bytes]:
        async def one(key: str) -> tuple[str, bytes | None]:
            try:
                return key, await self.get_bytes(key)
            except BlobNotFound:
                return key, None

        found = await asyncio.gather(*(one(key) for key in keys))
        return {key: data for key, data in found if data is not None}

    async def _head(self, key: str) -> ObjectMeta:
        check_key(key)
        try:
            return await obstore.head_async(self._store, key)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        except (ObstoreError, OSError) as exc:
            self._fail("metadata lookup", key, exc)

    async def size(self, key: str) -> int:
        return (await self._head(key))["size"]

    async def modified(self, key: str) -> datetime:
        return (await self._head(key))["last_modified"]

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except BlobNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        check_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError as exc:
            if _no_such_bucket(exc):
                self._fail("delete", key, exc)
        except (ObstoreError, OSError) as exc:
            self._fail("delete", key, exc)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield every key under ``prefix`` (whole path segments: ``a`` matches ``a/x``
        but not ``ab/x``), in lexicographic order."""
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        pages = obstore.list(self._store, prefix or None, chunk_size=1000)
        while True:
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                return
            except (ObstoreError, OSError) as exc:
                self._fail("listing", prefix, exc)
            for meta in page:
                yield meta["path"]

    async def sweep_partial(self, older_than: float, *, dry_run: bool) -> tuple[int, int]:
        """Nothing to sweep: an object appears only once its upload completes, and obstore
        aborts a multipart upload that fails. What a crash leaves (an incomplete multipart
        upload) is invisible to readers and is the bucket lifecycle rule's job
        (``AbortIncompleteMultipartUpload``, docs/deploy.md)."""
        return 0, 0

    async def close(self) -> None:
        # obstore keeps no per-store resources that need releasing.
        return None
