"""Retention: delete old session recordings (rows and blobs), by hand or daily in the server.

A session is old when its last batch (or its start, if it never got one) is older than the
cutoff. Its rows are deleted first, in one transaction per page, then its batch blobs: a crash
in between leaves unreferenced blobs (wasted space), never rows pointing at missing blobs.
Mobile images no session has uploaded since the cutoff go the same way. Reports are never
touched: a report keeps its own screenshot and files, even when the session it names is gone.
The orphan sweeps remove only blobs that no row names (see :func:`sweep_orphaned_reports`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.state import AppState
from fieldreport.storage.backend_events import delete_events_of_sessions
from fieldreport.storage.blobs import BlobNotFound
from fieldreport.storage.blobs.keys import REPORTS, report_of_key
from fieldreport.storage.reports import existing_report_ids
from fieldreport.storage.sessions import (
    count_inactive_since,
    delete_images_unused_since,
    delete_sessions,
    existing_session_ids,
    images_unused_since,
    sessions_inactive_since,
)

log = logging.getLogger(__name__)
PAGE = 200
DAY = 86400.0


@dataclass(frozen=True)
class GcResult:
    sessions: int
    batches: int
    bytes: int
    images: int
    image_bytes: int
    dry_run: bool
    blob_errors: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "sessions": self.sessions,
            "batches": self.batches,
            "bytes": self.bytes,
            "images": self.images,
            "image_bytes": self.image_bytes,
            "dry_run": self.dry_run,
            "blob_errors": self.blob_errors,
        }


async def _delete_blobs(state: AppState, keys: list[str]) -> int:
    errors = 0
    for key in keys:
        try:
            await state.blobs.delete(key)
        except Exception:
            errors += 1
            log.warning("could not delete blob %s", key, exc_info=True)
    return errors


async def collect_garbage(state: AppState, older_than: float, *, dry_run: bool) -> GcResult:
    """Delete sessions inactive for ``older_than`` seconds (or only count them)."""
    cutoff = state.clock() - timedelta(seconds=older_than)
    async with state.db.read() as conn:
        n_sessions, n_batches, n_bytes = await count_inactive_since(conn, cutoff)
        n_images, image_bytes = await images_unused_since(conn, cutoff)
    if dry_run:
        return GcResult(n_sessions, n_batches, n_bytes, n_images, image_bytes, True)
    errors = 0
    deleted = 0
    while True:
        async with state.db.write() as conn:
            ids = await sessions_inactive_since(conn, cutoff, PAGE)
            await delete_events_of_sessions(conn, ids)  # unless a report names them
            keys = await delete_sessions(conn, ids)
        deleted += len(ids)
        errors += await _delete_blobs(state, keys)
        if len(ids) < PAGE:
            break
    async with state.db.write() as conn:
        image_keys = await delete_images_unused_since(conn, cutoff)
    errors += await _delete_blobs(state, image_keys)
    log.info(
        "gc: removed %d sessions (%d batches, %d bytes) and %d images older than %s",
        deleted,
        n_batches,
        n_bytes,
        len(image_keys),
        cutoff.isoformat(),
    )
    return GcResult(deleted, n_batches, n_bytes, len(image_keys), image_bytes, False, errors)


#: A report's files are written before its row commits: files younger than this whose row
#: is missing may belong to a report being accepted right now, so the sweep leaves them.
REPORT_ORPHAN_GRACE = 3600.0

ExistingIds = Callable[[AsyncConnection, list[str]], Awaitable[set[str]]]


def _session_of_key(key: str) -> str | None:
    parts = key.split("/")  # sessions/<project>/<session>/<batch>
    return parts[2] if len(parts) == 4 else None


async def _sweep(
    state: AppState,
    prefix: str,
    owner_of: Callable[[str], str | None],
    existing: ExistingIds,
    *,
    dry_run: bool,
    grace: float | None = None,
) -> tuple[int, int]:
    """Delete the blobs under ``prefix`` whose owner (``owner_of(key)``; ``None``: not an
    owned blob, left alone) has no row (with ``grace``: only when all of the owner's blobs
    are older than that many seconds). Returns ``(blobs, errors)``."""
    found = 0
    errors = 0
    pending: dict[str, list[str]] = {}

    async def settle() -> None:
        nonlocal found, errors
        async with state.db.read() as conn:
            alive = await existing(conn, list(pending))
        for owner, keys in pending.items():
            if owner in alive or (grace is not None and await _any_younger(state, keys, grace)):
                continue
            found += len(keys)
            if not dry_run:
                errors += await _delete_blobs(state, keys)
        pending.clear()

    async for key in state.blobs.list(prefix):
        owner = owner_of(key)
        if owner is None:
            continue
        pending.setdefault(owner, []).append(key)
        if len(pending) >= PAGE:
            await settle()
    await settle()
    return found, errors


async def _any_younger(state: AppState, keys: list[str], seconds: float) -> bool:
    cutoff = state.clock() - timedelta(seconds=seconds)
    for key in keys:
        try:
            if await state.blobs.modified(key) >= cutoff:
                return True
        except BlobNotFound:
            continue
    return False


async def sweep_orphaned_batches(state: AppState, *, dry_run: bool) -> tuple[int, int]:
    """Delete batch blobs whose session row is gone (left behind when deleting a blob failed).

    Session rows are created before any of their batches arrive, so a batch blob without a
    session row can only belong to a deleted session. Returns ``(blobs, errors)``.
    """
    return await _sweep(state, "sessions", _session_of_key, existing_session_ids, dry_run=dry_run)


async def sweep_orphaned_reports(
    state: AppState, *, dry_run: bool, grace: float = REPORT_ORPHAN_GRACE
) -> tuple[int, int]:
    """Delete report files whose report row does not exist and which are older than
    ``grace`` seconds: left behind by a crash (or a commit of unknown outcome) between
    writing a report's files and committing its row, complete or not (a report's files are
    written in place). Both key layouts (:mod:`fieldreport.storage.blobs.keys`). Returns
    ``(blobs, errors)``."""
    return await _sweep(
        state, REPORTS, report_of_key, existing_report_ids, dry_run=dry_run, grace=grace
    )


async def sweep_partial_files(
    state: AppState, *, dry_run: bool, grace: float = REPORT_ORPHAN_GRACE
) -> tuple[int, int]:
    """Delete the temporary files of blob writes that never finished (a crash between
    writing and renaming), once ``grace`` seconds have passed since their last write. No
    row can name them: a blob only gets its key when it is complete. Returns
    ``(files, errors)``."""
    return await state.blobs.sweep_partial(grace, dry_run=dry_run)


async def retention_loop(
    state: AppState, older_than: float, sleep: Callable[[float], Awaitable[None]]
) -> None:
    """Collect once now, then once a day, until cancelled."""
    while True:
        try:
            await collect_garbage(state, older_than, dry_run=False)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session retention failed; will retry in a day")
        await sleep(DAY)


async def start_retention(state: AppState) -> Callable[[], Awaitable[None]]:
    """A :data:`fieldreport.app.Service`: runs when ``session_retention`` is set."""
    older_than = state.settings.session_retention
    if older_than <= 0:

        async def nothing() -> None:
            return None

        return nothing
    task = asyncio.create_task(retention_loop(state, older_than, asyncio.sleep))

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
