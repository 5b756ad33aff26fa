"""Loading a stored report into the :class:`ReportBundle` every format and transport gets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.state import AppState
from fieldreport.storage.backend_events import backend_event_dict, events_for_recording
from fieldreport.storage.reports import Report, StoredFile, get_report

MAX_BACKEND_EVENTS = 10_000  # per push: the newest are in the dashboard and the API


async def backend_events(state: AppState, project_id: int, recording: str) -> list[dict[str, Any]]:
    """The recording's backend events (full-stack API), oldest first, as pushed."""
    async with state.db.read() as conn:
        events = await events_for_recording(conn, project_id, recording, limit=MAX_BACKEND_EVENTS)
    return [backend_event_dict(e) for e in events]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, fallback: str) -> str:
    """A filename safe on any receiver: no path, no odd characters, no leading dot."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    return base or fallback


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


async def _file(
    state: AppState, stored: StoredFile, fallback: str, files: Mapping[str, bytes]
) -> FileData:
    data = files.get(stored.blob_key)
    if data is None:
        data = await state.blobs.get_bytes(stored.blob_key)
    return FileData(safe_filename(stored.filename, fallback), stored.content_type, data)


def _ext(content_type: str) -> str:
    return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(content_type, "bin")


async def bundle_for(
    state: AppState, report: Report, files: Mapping[str, bytes] | None = None
) -> ReportBundle:
    """The report as pushed; ``files`` holds blobs already read (:func:`prefetch_files`)."""
    files = files or {}
    shot = report.screenshot
    screenshot = (
        await _file(state, shot, f"screenshot-{report.ticketnr}.{_ext(shot.content_type)}", files)
        if shot
        else None
    )
    attachments = [
        await _file(state, a, f"attachment-{a.position + 1}", files) for a in report.attachments
    ]
    events: list[dict[str, Any]] = []
    if report.fields.recording:
        events = await backend_events(state, report.project_id, report.fields.recording)
    f = report.fields
    return ReportBundle(
        reportid=report.id,
        ticketnr=report.ticketnr,
        ticketurl=f"{state.public_url}/reports/{report.id}",
        project=report.project_name,
        created_at=report.created_at.isoformat(),
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
