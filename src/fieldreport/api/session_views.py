"""Views of stored sessions: their JSON form and a web session's events as one stream.

:func:`events_stream` yields ``[e1,e2,...]`` over every batch in sequence order without
building the array: each batch's bytes (from its row or its blob, see
:class:`~fieldreport.storage.session_batches.BatchContent`) are streamed (and inflated, if it
was sent gzipped, a bounded step at a time), its outer brackets are cut off on the fly and
the pieces are joined with commas. Batches were proven to be JSON arrays of objects when
they arrived.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from fieldreport.storage.session_batches import Batch
from fieldreport.storage.sessions import LinkedReport, Session

#: A batch's stored bytes, e.g. :meth:`~fieldreport.storage.session_batches.BatchContent.chunks`.
BatchChunks = Callable[[Batch], AsyncIterator[bytes]]

WHITESPACE = b" \t\r\n"
INFLATE_STEP = 256 * 1024


def iso_z(value: datetime) -> str:
    """``2026-05-01T12:00:00Z``: ISO 8601 that survives being pasted into a URL."""
    return value.isoformat().replace("+00:00", "Z")


def batch_dict(batch: Batch, session_id: str) -> dict[str, Any]:
    return {
        "url": f"/api/v1/sessions/{session_id}/batches/{batch.seq}",
        "seq": batch.seq,
        "late": batch.late,
        "received_at": batch.received_at.isoformat(),
        "size": batch.size,
        "encoding": batch.encoding or "identity",
    }


def session_dict(
    session: Session, reports: list[LinkedReport] | None = None, public_url: str = ""
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": session.id,
        "project": session.project_name,
        "project_id": session.project_id,
        "platform": session.platform,
        "user_uuid": session.user_uuid,
        "tracker_version": session.tracker_version,
        "rev_id": session.rev_id,
        "user_os_version": session.user_os_version,
        "user_device": session.user_device,
        "user_device_type": session.user_device_type,
        "user_agent": session.user_agent,
        "performance": session.performance,
        "started_at": session.started_at.isoformat(),
        "first_batch_at": session.first_batch_at.isoformat() if session.first_batch_at else None,
        "last_batch_at": session.last_batch_at.isoformat() if session.last_batch_at else None,
        "batch_count": session.batch_count,
        "byte_count": session.byte_count,
    }
    if session.platform == "web":
        data["events_url"] = f"/api/v1/sessions/{session.id}/events"
    if reports is not None:
        data["reports"] = [
            {
                "reportid": r.reportid,
                "ticketnr": r.ticketnr,
                "created_at": r.created_at.isoformat(),
                "ticketurl": f"{public_url}/reports/{r.reportid}",
            }
            for r in reports
        ]
    return data


async def _plain(read: BatchChunks, batch: Batch) -> AsyncIterator[bytes]:
    """A batch's bytes as JSON text (inflated a bounded step at a time)."""
    if batch.encoding != "gzip":
        async for chunk in read(batch):
            yield chunk
        return
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    async for chunk in read(batch):
        data = chunk
        while data:
            out = d.decompress(data, INFLATE_STEP)
            if out:
                yield out
            if d.eof:
                data = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = d.unconsumed_tail


class _InnerArray:
    """Cuts the outer ``[`` and ``]`` off a JSON array arriving in pieces."""

    def __init__(self) -> None:
        self.opened = False
        self.held = b""

    def feed(self, data: bytes) -> bytes:
        if not self.opened:
            data = data.lstrip(WHITESPACE)
            if not data:
                return b""
            if data[:1] != b"[":
                raise ValueError("stored batch is not a JSON array")
            data = data[1:]
            self.opened = True
        combined = self.held + data
        end = len(combined.rstrip(WHITESPACE))
        if end == 0:
            self.held = combined
            return b""
        # Keep back the last non-blank byte (perhaps the closing bracket) and what follows.
        self.held = combined[end - 1 :]
        return combined[: end - 1]


async def events_stream(read: BatchChunks, batches: list[Batch]) -> AsyncIterator[bytes]:
    """``[e1,e2,...]``: the events of ``batches`` in order, each batch's bytes from ``read``."""
    yield b"["
    any_events = False
    for batch in batches:
        inner = _InnerArray()
        batch_started = False
        async for piece in _plain(read, batch):
            out = inner.feed(piece)
            if not batch_started:
                out = out.lstrip(WHITESPACE)
                if not out:
                    continue
                if any_events:
                    yield b","
                batch_started = any_events = True
            if out:
                yield out
    yield b"]"
