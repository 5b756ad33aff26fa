"""How many durable small-file writes per second this disk allows (the storage ceiling).

Two ways to make a write durable, each from ``threads`` threads at once for ``seconds``, with
no HTTP, no database and no Python parsing:

- ``fsync`` (per file): a temporary file with ``size`` bytes, fsync, rename into place, fsync
  the directory -- what the local blob store's ``put_*`` does for every blob.
- ``syncfs`` (group flush): the same file and rename without any fsync, then a shared
  ``syncfs(2)`` on the filesystem; writers that finish while one runs join the next (group
  commit, no timer) -- what ``write()`` + ``flush()`` does. Linux only.

``python -m bench.diskceiling`` prints both side by side for 20 KB and 200 KB files.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from fieldreport.storage.blobs.local import fsync_dir

Mode = Literal["fsync", "syncfs"]


def _group_syncfs(root: Path) -> tuple[Callable[[], None], Callable[[], int]]:
    """A thread-safe group flush over ``syncfs(root)``: returns (flush, number of syncfs calls)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    cond = threading.Condition()
    requested = completed = calls = 0
    flushing = False

    def flush() -> None:
        nonlocal requested, completed, calls, flushing
        with cond:
            requested += 1
            ticket = requested
            while completed < ticket:
                if flushing:
                    cond.wait()
                    continue
                flushing = True
                covers = requested
                cond.release()
                try:
                    if libc.syncfs(fd) != 0:
                        raise OSError(ctypes.get_errno(), "syncfs failed")
                finally:
                    cond.acquire()
                    flushing = False
                    cond.notify_all()
                completed = covers
                calls += 1

    return flush, lambda: calls


def durable_writes(
    size: int,
    seconds: float = 3,
    threads: int = 16,
    base: Path | None = None,
    mode: Mode = "fsync",
) -> float:
    """Durable writes per second of ``size``-byte files (``mode``: see the module doc)."""
    return measure(size, seconds, threads, base, mode)[0]


def measure(
    size: int, seconds: float, threads: int, base: Path | None, mode: Mode
) -> tuple[float, int]:
    """``(durable writes per second, syncfs calls made)`` (no calls in ``fsync`` mode)."""
    data = os.urandom(size)
    done = 0
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(dir=base, prefix="fieldreport-disk-") as tmp:
        root = Path(tmp)
        flush, calls = _group_syncfs(root) if mode == "syncfs" else (None, lambda: 0)
        deadline = time.monotonic() + seconds

        def work() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                part = root / f"{uuid.uuid4().hex}.part"
                with part.open("wb") as fh:
                    fh.write(data)
                    if flush is None:
                        fh.flush()
                        os.fsync(fh.fileno())
                final = part.with_suffix(".blob")
                os.replace(part, final)
                if flush is None:
                    fsync_dir(root)
                else:
                    flush()
                final.unlink()
                with lock:
                    done += 1

        began = time.monotonic()
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return done / (time.monotonic() - began), calls()


if __name__ == "__main__":
    base = Path(__file__).resolve().parents[1] / ".bench"
    base.mkdir(exist_ok=True)
    print("durable writes per second, 16 threads, 3 s each")
    print("  size  per-file fsync  syncfs group  (files per syncfs)")
    for size in (20_000, 200_000):
        per_file, _ = measure(size, 3, 16, base, "fsync")
        grouped, calls = measure(size, 3, 16, base, "syncfs")
        per_call = grouped * 3 / calls if calls else 0.0
        print(f"{size // 1000:>3} KB  {per_file:>14.0f}  {grouped:>12.0f}  ({per_call:.1f})")
