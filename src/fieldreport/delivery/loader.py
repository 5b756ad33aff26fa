"""Loading a stored report into the :class:`ReportBundle` every format and transport gets."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.state import AppState
from fieldreport.storage.backend_events import backend_event_dict, events_for_recording
from fieldreport.storage.reports import ATTACHMENT, SCREENSHOT, Report, StoredFile, get_report

MAX_BACKEND_EVENTS = 10_000  # per push: the newest are in the dashboard and the API


async def backend_events(state: AppState, project_id: int, recording: str) -> list[dict[str, Any]]:
    """The recording's backend events (full-stack API), oldest first, as pushed."""
    async with state.db.read() as conn:
        events = await events_for_recording(conn, project_id, recording, limit=MAX_BACKEND_EVENTS)
    return [backend_event_dict(e) for e in events]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, fallback: str) -> str:
    """A filename safe on any receiver: no path, no odd characters, no leading dot."""
    return _safe_base(name) or fallback


@functools.lru_cache(maxsize=1024)
def _safe_base(name: str) -> str:
    """:func:`safe_filename` without the fallback (the same few names come again and again:
    ``screenshot.png``), or "" when nothing safe is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip("._")[:120]


#: How many bytes of files :func:`prefetch_files` reads ahead for one claimed batch; the
#: rest is read when its delivery is sent (a batch of big attachments is not held in memory).
PREFETCH_BYTES = 8 * 1024 * 1024


async def prefetch_files(state: AppState, reports: Iterable[Report]) -> dict[str, bytes]:
    """The files of a claimed batch's reports, read together (from a local disk in one trip
    to a thread instead of one per file), up to :data:`PREFETCH_BYTES` in all."""
    keys: list[str] = []
    total = 0
    for report in reports:
        for stored in report.files:
            if total + stored.size <= PREFETCH_BYTES:
                keys.append(stored.blob_key)
                total += stored.size
    return await state.blobs.get_many(list(dict.fromkeys(keys))) if keys else {}


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _ext(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "bin")


def _fallback(stored: StoredFile, ticketnr: int) -> str:
    """The file's name when nothing safe is left of the one it came with."""
    if stored.role == SCREENSHOT:
        return f"screenshot-{ticketnr}.{_ext(stored.content_type)}"
    return f"attachment-{stored.position + 1}"


async def bundle_for(
    state: AppState, report: Report, files: Mapping[str, bytes] | None = None
) -> ReportBundle:
    """The report as pushed; ``files`` holds blobs already read (:func:`prefetch_files`)."""
    screenshot: FileData | None = None
    attachments: list[FileData] = []
    # One pass over the files (the first screenshot, the attachments in order), inline, not
    # a coroutine per file: a blob is read only when it was not read ahead.
    for stored in report.files:
        role = stored.role
        if role == SCREENSHOT:
            if screenshot is not None:
                continue
        elif role != ATTACHMENT:
            continue
        data = files.get(stored.blob_key) if files else None
        if data is None:
            data = await state.blobs.get_bytes(stored.blob_key)
        name = _safe_base(stored.filename) or _fallback(stored, report.ticketnr)
        item = FileData(name, stored.content_type, data)
        if role == SCREENSHOT:
            screenshot = item
        else:
            attachments.append(item)
    events: list[dict[str, Any]] = []
    if report.fields.recording:
        events = await backend_events(state, report.project_id, report.fields.recording)
    f = report.fields
    return ReportBundle(
        reportid=report.id,
        ticketnr=report.ticketnr,
        ticketurl=f"{state.public_url}/reports/{report.id}",
        project=report.project_name,
        created_at=report.created_at,  # made into text when read
        subject=f.subject,
        browser=f.browser,
        ipaddress=f.ipaddress,
        referer=f.referer,
        senderemail=f.senderemail,
        sendercomment=f.sendercomment,
        additionalinfo=f.additionalinfo,
        notelist=list(f.notelist),
        recording=f.recording,
        screenshot=screenshot,
        attachments=attachments,
        backend_events=events,
    )


async def load_bundle(state: AppState, report_id: str) -> ReportBundle | None:
    async with state.db.read() as conn:
        report = await get_report(conn, report_id)
    if report is None:
        return None
    return await bundle_for(state, report)
