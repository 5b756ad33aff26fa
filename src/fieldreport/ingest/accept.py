"""Accepting a report: blobs first, then one transaction for the rows.

The blobs are written (each at a fresh key, see :mod:`fieldreport.storage.blobs.keys`),
then flushed to disk (one flush shared with concurrent requests, which hands the rows to
the batch writer as it ends) before the transaction that makes them visible, so a
committed report never points at a missing blob; if the transaction fails, the blobs are
deleted again. The transaction is
the seam for the delivery outbox: rows added to it are committed atomically with the report.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from fieldreport.ingest.errors import HTTPProblem, storage_unavailable, unavailable
from fieldreport.ingest.files import IncomingFile, NotAnImage
from fieldreport.ingest.report_input import IncomingReport, not_an_image
from fieldreport.randomids import new_uuid4
from fieldreport.state import AppState
from fieldreport.storage.blobs import BlobStoreError
from fieldreport.storage.blobs.keys import report_key_prefix
from fieldreport.storage.projects import Project
from fieldreport.storage.report_writer import NewReport, Refusal, write_reports
from fieldreport.storage.reports import ReportFields, StoredFile, get_report
from fieldreport.storage.schema.base import utcnow

log = logging.getLogger(__name__)


class KeyRefused(Exception):
    """The write transaction found the report's key no longer valid for its project
    (``reason == "key"``) or its origin no longer allowed (``"origin"``): nothing was
    stored, and the request gets the answer a fresh key lookup would give."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


@dataclass(frozen=True)
class AcceptedReport:
    reportid: str
    ticketnr: int
    ticketurl: str


def ticket_url(public_url: str, report_id: str) -> str:
    return f"{public_url}/reports/{report_id}"


async def _store_file(
    state: AppState, key: str, incoming: IncomingFile, position: int
) -> StoredFile:
    """Write one file (not yet durable: the caller flushes), hashed on the way. The key is
    new (it names a new report id) and nothing reads it before the report commits, so the
    store may write it in place (:meth:`BlobStore.create`). The file's remaining check
    (``incoming.check``) runs there too: raises :class:`NotAnImage`, nothing written."""
    blob = await state.blobs.create(key, incoming.file, sha256=True, check=incoming.check)
    assert blob.sha256 is not None
    return StoredFile(
        role=incoming.role,
        position=position,
        filename=incoming.filename,
        content_type=incoming.content_type,
        size=blob.size,
        sha256=blob.sha256,
        blob_key=key,
    )


def report_fields(
    incoming: IncomingReport, *, browser: str, ipaddress: str, referer: str
) -> ReportFields:
    text = incoming.text
    return ReportFields(
        subject=text.get("subject", "").strip(),
        sendercomment=text.get("sendercomment", ""),
        senderemail=text.get("senderemail", ""),
        additionalinfo=text.get("additionalinfo", ""),
        browser=text.get("browser") or browser,
        ipaddress=ipaddress,
        referer=text.get("referer") or referer,
        recording=text.get("recording") or None,
        notelist=list(incoming.notes),
    )


async def accept_report(
    state: AppState,
    project: Project,
    incoming: IncomingReport,
    fields: ReportFields,
    *,
    key_hash: str | None = None,
    origin: str | None = None,
) -> AcceptedReport:
    """Store a validated report durably. Raises HTTPProblem: 400 ``not_an_image`` when a
    file fails the check that runs where it is written (``IncomingFile.check``: nothing is
    stored), 503/507 when storage fails; and :class:`KeyRefused` when the transaction finds
    ``key_hash`` (the request's public key, looked up through a cache) no longer
    ``project``'s, or ``origin`` no longer allowed."""
    report_id = new_uuid4()
    prefix = report_key_prefix(project.id, report_id, utcnow())
    stored: list[StoredFile] = []
    committing = False
    try:
        try:
            if incoming.screenshot is not None:
                ext = incoming.screenshot.filename.rsplit(".", 1)[-1]
                stored.append(
                    await _store_file(state, f"{prefix}.screenshot.{ext}", incoming.screenshot, 0)
                )
            for i, attachment in enumerate(incoming.attachments):
                stored.append(
                    await _store_file(state, f"{prefix}.attachment-{i + 1}", attachment, i)
                )
        except NotAnImage as exc:
            raise not_an_image(exc) from exc
        except BlobStoreError as exc:
            raise _storage_failed(report_id, exc) from exc
        try:
            # The report's rows and its delivery (outbox) row commit together, possibly in
            # one transaction with other reports arriving at the same moment. The files are
            # durable first: the rows are queued once a flush (shared with concurrent
            # requests) covering them has ended, by the flusher's thread itself. A failure
            # from the queueing on may be a COMMIT of unknown outcome.
            committing = True
            try:
                row = NewReport(report_id, project.id, utcnow(), fields, stored, key_hash, origin)
                after = state.blobs.after_flush if stored else None
                written = await state.writer.submit(write_reports, row, after=after)
            except BlobStoreError as exc:
                committing = False  # the flush failed: the rows were never queued
                raise _storage_failed(report_id, exc) from exc
            except asyncio.CancelledError:
                # The client went away, but its group may still commit these rows: keep
                # the blobs (an uncommitted leftover is an orphan for gc, never a dangling row).
                stored = []
                raise
        except (OperationalError, DBAPIError, PoolTimeout, OSError) as exc:
            log.error("database write failed for report %s: %s", report_id, exc)
            raise unavailable("database unavailable, try again shortly") from exc
    except BaseException:
        if committing:
            # The COMMIT itself failed (e.g. the connection died while it was on its way):
            # it may have been applied, and a committed report must keep its files.
            await asyncio.shield(_delete_blobs_unless_committed(state, report_id, stored))
        else:
            await asyncio.shield(_delete_blobs(state, [f.blob_key for f in stored]))
        raise
    if written.refused is not None:
        # Known not to be committed (the transaction left the report out): remove its files.
        await asyncio.shield(_delete_blobs(state, [f.blob_key for f in stored]))
        raise KeyRefused(written.refused)
    if written.delivery_id is not None:
        state.delivery_wake.set()
    return AcceptedReport(report_id, written.ticketnr, ticket_url(state.public_url, report_id))


def _storage_failed(report_id: str, exc: BlobStoreError) -> HTTPProblem:
    log.error("blob store failed for report %s: %s", report_id, exc)
    return storage_unavailable(exc)


async def _delete_blobs_unless_committed(
    state: AppState, report_id: str, stored: list[StoredFile]
) -> None:
    """After a COMMIT of unknown outcome: delete the files only if the report is surely
    not there; when the database cannot tell us now, keep them (an orphan costs space; a
    committed report without its files could never be delivered)."""
    keys = [f.blob_key for f in stored]
    try:
        async with state.db.read() as conn:
            committed = await get_report(conn, report_id) is not None
    except Exception:
        log.warning("report %s: commit outcome unknown; keeping its files %s", report_id, keys)
        return
    if not committed:
        await _delete_blobs(state, keys)


async def _delete_blobs(state: AppState, keys: list[str]) -> None:
    for key in keys:
        try:
            await state.blobs.delete(key)
        except Exception:  # best effort; `fieldreport gc` sweeps what is left
            log.warning("could not delete orphaned blob %s", key, exc_info=True)
