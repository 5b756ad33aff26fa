"""Blob store over a local directory: atomic, fsync'd writes."""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from fieldreport.storage.blobs.base import (
    CHUNK_SIZE,
    BlobNotFound,
    BlobStoreError,
    check_key,
    file_chunks,
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    """Blobs as files under ``root``.

    A write goes to a temporary file in the target directory, is fsync'd, renamed into
    place and the directory fsync'd, so a blob is either absent or complete and durable,
    even across a power cut.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self._path(key)
        tmp = self.root / ".tmp" / f"{uuid.uuid4().hex}.part"
        fh = await asyncio.to_thread(tmp.open, "wb")
        size = 0
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    await asyncio.to_thread(fh.write, chunk)
                # flush, fsync, close, rename, fsync the directory: one trip to a thread.
                await asyncio.to_thread(self._finish, fh, tmp, target)
            finally:
                if not fh.closed:
                    await asyncio.to_thread(fh.close)
        except OSError as exc:
            await asyncio.to_thread(tmp.unlink, True)
            if exc.errno == errno.ENOSPC:
                raise BlobStoreError("blob store is full (no space left on device)") from exc
            raise BlobStoreError(f"cannot write blob: {exc.strerror}") from exc
        except BaseException:
            await asyncio.to_thread(tmp.unlink, True)
            raise
        return size

    @classmethod
    def _finish(cls, fh: BinaryIO, tmp: Path, target: Path) -> None:
        try:
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        cls._commit(tmp, target)

    @staticmethod
    def _commit(tmp: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    async def put_bytes(self, key: str, data: bytes) -> None:
        async def one() -> AsyncIterator[bytes]:
            yield data

        await self.put_stream(key, one())

    async def put_file(self, key: str, path: Path) -> int:
        return await self.put_stream(key, file_chunks(path))

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

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

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

    async def close(self) -> None:
        return None
