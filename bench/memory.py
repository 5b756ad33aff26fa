"""Peak memory of the server: one 100 MiB upload, and 1 GiB of session batches.

Each measurement uses a fresh server process and reads its peak resident set size (``VmHWM``
in ``/proc/<pid>/status``), so the number is the high-water mark of that process alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bench import payloads, servers

MiB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _post_streamed(
    url: str, headers: dict[str, str], head: bytes, size: int, tail: bytes
) -> tuple[int, str]:
    async def body() -> AsyncIterator[bytes]:
        yield head
        chunk = b"\xa5" * MiB
        sent = 0
        while sent < size:
            n = min(MiB, size - sent)
            yield chunk[:n]
            sent += n
        yield tail

    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(url, data=body(), headers=headers) as resp,
    ):
        return resp.status, (await resp.text())[:200]


def upload(size: int = 100 * MiB) -> dict[str, Any]:
    """Peak RSS of fieldreport and of the bare ceiling while one report with a ``size``-byte
    attachment (plus the usual screenshot) is streamed in."""
    shot = payloads.screenshot_png()
    b = payloads.BOUNDARY
    head = (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="subject"\r\n\r\nlarge upload\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="s.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + shot
        + (
            f"\r\n--{b}\r\nContent-Disposition: form-data; "
            'name="attachment"; filename="dump.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    tail = f"\r\n--{b}--\r\n".encode()
    ctype = {"Content-Type": f"multipart/form-data; boundary={b}"}
    out: dict[str, Any] = {"size_mib": size / MiB}
    with servers.scratch("upload") as work:
        with servers.fieldreport(1, work, FIELDREPORT_MAX_REPORT_BYTES=str(size + 10 * MiB)) as fr:
            pid = fr.pids[0]
            before = status_kib(pid, "VmRSS")
            began = time.perf_counter()
            status, text = asyncio.run(
                _post_streamed(fr.urls("/api/v1/reports")[0],
                               {**ctype, "X-Fieldreport-Key": fr.public_key}, head, size, tail)
            )  # fmt: skip
            out["fieldreport"] = {
                "status": status,
                "seconds": round(time.perf_counter() - began, 2),
                "rss_before_mib": round(before / 1024, 1),
                "peak_rss_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
                "answer": text if status >= 300 else "",
            }
        with servers.bare(1, work) as bare:
            pid = bare.pids[0]
            before = status_kib(pid, "VmRSS")
            status, _ = asyncio.run(
                _post_streamed(bare.urls("/ingest")[0], ctype, head, size, tail)
            )
            out["ceiling"] = {
                "status": status,
                "rss_before_mib": round(before / 1024, 1),
                "peak_rss_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
            }
    return out


def sessions(gigabytes: float) -> dict[str, Any]:
    """Peak RSS while ``gigabytes`` of session batches go into one web session."""
    from bench import sessions_append as sa  # the sessions helper's benchmark, reused

    async def go(fr: servers.Fieldreport) -> dict[str, Any]:
        base = fr.urls("")[0]
        project = {"public_key": fr.public_key}
        batch = sa.events_batch(1000 * 1024)
        count = max(1, int(gigabytes * 1024**3 / len(batch)))
        token = await sa.start_session(base, "web", project)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        pid = fr.pids[0]
        before = status_kib(pid, "VmRSS")
        elapsed = await sa.hammer(f"{base}/v1/web/append", batch, headers, count, 8)
        total = count * len(batch)
        return {
            "gib": round(total / 1024**3, 2),
            "batches": count,
            "batch_bytes": len(batch),
            "seconds": round(elapsed, 1),
            "mb_per_s": round(total / elapsed / 1e6, 1),
            "rss_before_mib": round(before / 1024, 1),
            "peak_rss_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
        }

    with (
        servers.scratch("sessions-rss") as work,
        servers.fieldreport(1, work, **servers.NO_SESSION_RATE_LIMITS) as fr,
    ):
        return asyncio.run(go(fr))
