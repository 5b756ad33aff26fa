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


def bundle_now(
    state: AppState,
    report: Report,
    files: Mapping[str, bytes] | None,
    public_url: str | None = None,
) -> ReportBundle | None:
    """The report as pushed, when nothing is left to read: every file it pushes was read
    ahead (in ``files``) and it has no recording (whose backend events are read from the
    database); else None (:func:`bundle_for` reads what is missing). The worker's common
    case, built without a coroutine per delivery. ``public_url``: the server's (for the
    ticket link), when the caller has it at hand (else read from the settings: two
    property calls through pydantic's attribute hooks)."""
    if report.fields.recording or not files:
        return None
    pushed = _pushed(report)
    for stored in pushed:
        if stored.blob_key not in files:
            return None
    return _bundle(state, report, pushed, files, [], public_url)


async def bundle_for(
    state: AppState, report: Report, files: Mapping[str, bytes] | None = None
) -> ReportBundle:
    """The report as pushed; ``files`` holds blobs already read (:func:`prefetch_files`)."""
    pushed = _pushed(report)
    found: dict[str, bytes] = {}
    for stored in pushed:  # a blob is read only when it was not read ahead
        data = files.get(stored.blob_key) if files else None
        if data is None:
            data = await state.blobs.get_bytes(stored.blob_key)
        found[stored.blob_key] = data
    events: list[dict[str, Any]] = []
    if report.fields.recording:
        events = await backend_events(state, report.project_id, report.fields.recording)
    return _bundle(state, report, pushed, found, events)


def _pushed(report: Report) -> list[StoredFile]:
    """The files a push carries, in order: the first screenshot, every attachment."""
    pushed: list[StoredFile] = []
    shot = False
    for stored in report.files:
        role = stored.role
        if role == SCREENSHOT:
            if shot:
                continue
            shot = True
        elif role != ATTACHMENT:
            continue
        pushed.append(stored)
    return pushed


def _bundle(
    state: AppState,
    report: Report,
    pushed: list[StoredFile],
    files: Mapping[str, bytes],
    events: list[dict[str, Any]],
    public_url: str | None = None,
) -> ReportBundle:
    """The bundle of ``report``; ``pushed`` from :func:`_pushed`, their blobs in ``files``."""
    screenshot: FileData | None = None
    attachments: list[FileData] = []
    for stored in pushed:
        name = _safe_base(stored.filename) or _fallback(stored, report.ticketnr)
        item = FileData(name, stored.content_type, files[stored.blob_key])
        if stored.role == SCREENSHOT:
            screenshot = item
        else:
            attachments.append(item)
    f = report.fields
    # Positional, in the fields' order (keyword arguments cost ~2x as much, per delivery);
    # created_at is made into text when read.
    return ReportBundle(
        report.id, report.ticketnr, f"{public_url or state.public_url}/reports/{report.id}",
        report.project_name, f.subject, f.browser, f.ipaddress, f.referer, f.senderemail,
        f.sendercomment, f.additionalinfo, list(f.notelist), f.recording, screenshot,
        report.created_at, attachments, None, events,
    )  # fmt: skip


async def load_bundle(state: AppState, report_id: str) -> ReportBundle | None:
    async with state.db.read() as conn:
        report = await get_report(conn, report_id)
    if report is None:
        return None
    return await bundle_for(state, report)
