"""How many durable small-file writes per second this disk allows (the storage ceiling).

Each write: a temporary file with ``size`` bytes, fsync, rename into place, fsync the
directory (what fieldreport's local blob store does for every screenshot or batch), from
``threads`` threads at once for ``seconds``. No HTTP, no database, no Python parsing.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path


def durable_writes(
    size: int, seconds: float = 3, threads: int = 16, base: Path | None = None
) -> float:
    data = os.urandom(size)
    done = 0
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(dir=base, prefix="fieldreport-disk-") as tmp:
        root = Path(tmp)
        deadline = time.monotonic() + seconds

        def work() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                part = root / f"{uuid.uuid4().hex}.part"
                with part.open("wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                final = part.with_suffix(".blob")
                os.replace(part, final)
                fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                final.unlink()
                with lock:
                    done += 1

        began = time.monotonic()
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return done / (time.monotonic() - began)


if __name__ == "__main__":
    for size in (20_000, 200_000):
        print(
            size, round(durable_writes(size, base=Path(__file__).resolve().parents[1] / ".bench"))
        )
