"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import os
import socket
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, method: str = "GET", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.request(method, url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def _dirty_bytes() -> int:
    """Dirty plus under-writeback page cache, from /proc/meminfo (0 where it is missing)."""
    total = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("Dirty", "Writeback"):
                    total += int(rest.split()[0]) * 1024
    except OSError:
        return 0
    return total


def settle(
    *, max_wait: float = 20.0, dirty_below: int = 32 << 20, busy_below: float = 40.0
) -> dict[str, float]:
    """Let the machine calm down before a measurement: write back what earlier work left
    dirty (``sync``), then wait until little is dirty and the CPUs are mostly idle (sampled
    over 0.5 s), for at most ``max_wait`` seconds. Returns what it saw, for the record:
    a section measured right after heavy disk activity (a test suite, the previous section's
    servers) otherwise pays for that activity's writeback."""
    import psutil

    started = time.monotonic()
    os.sync()
    dirty = _dirty_bytes()
    busy = psutil.cpu_percent(interval=0.5)
    while (dirty >= dirty_below or busy >= busy_below) and time.monotonic() - started < max_wait:
        os.sync()
        dirty = _dirty_bytes()
        busy = psutil.cpu_percent(interval=0.5)
    return {
        "waited_s": round(time.monotonic() - started, 1),
        "dirty_mib": round(dirty / (1 << 20), 1),
        "busy_pct": busy,
    }
