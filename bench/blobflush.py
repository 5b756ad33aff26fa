"""The local blob store, durable writes from many coroutines: put (fsync each) vs write+flush.

What the ingest endpoints do per blob, without HTTP or a database: ``concurrency``
coroutines each store a ``size``-byte blob in a directory of its own (like a report's files)
and wait until it is durable, for ``seconds``; the two ways alternate, ``rounds`` times.

- ``put``: ``put_stream`` of a spooled file, as report intake did before: a thread trip per
  256 KiB chunk, sha256 on the event loop, fsync of the file and the directory.
- ``write+flush``: ``write(file, sha256=True)`` (one thread trip, hashed there) and
  ``flush()``, one syncfs shared by the coroutines flushing at the same time.

Prints durable blobs per second and CPU seconds (this process) per 1000 blobs.
``python -m bench.blobflush``
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO

from fieldreport.storage.blobs import LocalBlobStore

CHUNK = 256 * 1024


async def _old_chunks(fh: IO[bytes], digest: hashlib._Hash) -> AsyncIterator[bytes]:
    fh.seek(0)
    while chunk := await asyncio.to_thread(fh.read, CHUNK):
        digest.update(chunk)
        yield chunk


async def run(
    store: LocalBlobStore, size: int, mode: str, concurrency: int, seconds: float
) -> tuple[float, float]:
    data = os.urandom(size)
    done = 0
    deadline = time.monotonic() + seconds

    async def put(key: str) -> None:
        with tempfile.SpooledTemporaryFile(1024 * 1024) as fh:
            fh.write(data)
            await store.put_stream(key, _old_chunks(fh, hashlib.sha256()))

    async def write_flush(key: str) -> None:
        with tempfile.SpooledTemporaryFile(1024 * 1024) as fh:
            fh.write(data)
            await store.write(key, fh, sha256=True)
        await store.flush()

    one: Callable[[str], Awaitable[None]] = put if mode == "put" else write_flush

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await one(f"reports/1/{uuid.uuid4()}/attachment-1")
            done += 1

    cpu, began = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.monotonic() - began, time.process_time() - cpu
    return done / wall, cpu / done * 1000


async def main(concurrency: int = 64, seconds: float = 3, rounds: int = 2) -> None:
    base = Path(__file__).resolve().parents[1] / ".bench"
    base.mkdir(exist_ok=True)
    print(f"{concurrency} coroutines, {seconds:.0f} s x {rounds} rounds each, alternating")
    print("  size  mode          durable/s  CPU s per 1000")
    for size in (20_000, 200_000):
        results: dict[str, list[tuple[float, float]]] = {"put": [], "write+flush": []}
        for _ in range(rounds):
            for mode in results:
                with tempfile.TemporaryDirectory(dir=base, prefix="blobflush-") as tmp:
                    store = LocalBlobStore(Path(tmp))
                    results[mode].append(await run(store, size, mode, concurrency, seconds))
                    await store.close()
        for mode, rows in results.items():
            rate = sum(r for r, _ in rows) / len(rows)
            cpu = sum(c for _, c in rows) / len(rows)
            print(f"{size // 1000:>3} KB  {mode:<12}  {rate:>9.0f}  {cpu:>14.2f}")


if __name__ == "__main__":
    asyncio.run(main())
