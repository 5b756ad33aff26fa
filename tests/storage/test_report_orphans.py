"""Report files whose report never committed (a crash between the blob write and the commit)
are swept by ``gc --orphans``, once older than the grace period; committed reports and
reports being accepted right now are never touched. Both backends (SQLite + local
directory, PostgreSQL + S3)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fieldreport.retention import REPORT_ORPHAN_GRACE, sweep_orphaned_reports, sweep_partial_files
from fieldreport.state import AppState
from fieldreport.storage.blobs import LocalBlobStore
from fieldreport.storage.blobs.keys import report_key_prefix, report_of_key
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report
from fieldreport.storage.schema.base import utcnow


async def _report_files(
    state: AppState, pid: int, report_id: str, *, old_layout: bool = False
) -> list[str]:
    """A report's two files, as intake writes them (or in the layout before month folders)."""
    if old_layout:
        keys = [f"reports/{pid}/{report_id}/{name}" for name in ("screenshot.png", "attachment-1")]
        for key in keys:
            await state.blobs.write(key, b"file bytes")
    else:
        prefix = report_key_prefix(pid, report_id, utcnow())
        keys = [f"{prefix}.screenshot.png", f"{prefix}.attachment-1"]
        for key in keys:
            await state.blobs.create(key, b"file bytes")
    await state.blobs.flush()
    return keys


async def _keys(state: AppState) -> list[str]:
    return sorted([k async for k in state.blobs.list("reports")])


@pytest.mark.parametrize("old_layout", [False, True], ids=["month-folders", "folder-per-report"])
async def test_sweep_deletes_old_files_of_reports_that_never_committed(
    state: AppState, project: NewProject, old_layout: bool
) -> None:
    pid = project.project.id
    committed = str(uuid.uuid4())
    committed_keys = await _report_files(state, pid, committed, old_layout=old_layout)
    async with state.db.write() as conn:
        await insert_report(
            conn,
            report_id=committed,
            project_id=pid,
            created_at=utcnow(),
            fields=ReportFields(subject="kept"),
            files=[
                StoredFile("screenshot", 0, "s.png", "image/png", 10, "x", committed_keys[0]),
                StoredFile("attachment", 0, "a", "text/plain", 10, "x", committed_keys[1]),
            ],
        )
    orphan_keys = await _report_files(state, pid, str(uuid.uuid4()), old_layout=old_layout)
    strays = [
        f"reports/{pid}/stray",  # wrong depth
        f"reports/{pid}/2026-11/not-a-report.screenshot.png",  # no report id: not ours
    ]
    for stray in strays:
        await state.blobs.put_bytes(stray, b"not a report file")

    # Just written: may be a report being accepted right now, its row not yet committed.
    assert await sweep_orphaned_reports(state, dry_run=False) == (0, 0)
    assert len(await _keys(state)) == 6

    later = utcnow() + timedelta(seconds=REPORT_ORPHAN_GRACE + 60)
    state.clock = lambda: later
    assert await sweep_orphaned_reports(state, dry_run=True) == (2, 0)
    assert len(await _keys(state)) == 6
    assert await sweep_orphaned_reports(state, dry_run=False) == (2, 0)
    left = await _keys(state)
    assert left == sorted([*committed_keys, *strays])
    assert not set(orphan_keys) & set(left)


@pytest.mark.parametrize("backend", ["sqlite+local"], indirect=True)  # sets file times
async def test_one_young_file_keeps_the_whole_report(state: AppState, project: NewProject) -> None:
    assert isinstance(state.blobs, LocalBlobStore)
    pid = project.project.id
    report_id = str(uuid.uuid4())
    keys = await _report_files(state, pid, report_id)
    hours_ago = time.time() - 3 * 3600
    for key in keys:
        os.utime(state.blobs.root / key, (hours_ago, hours_ago))
    young = f"{report_key_prefix(pid, report_id, utcnow())}.attachment-2"
    await state.blobs.create(young, b"still arriving")  # written just now
    assert await sweep_orphaned_reports(state, dry_run=False) == (0, 0)
    assert len(await _keys(state)) == 3
    os.utime(state.blobs.root / young, (hours_ago, hours_ago))
    assert await sweep_orphaned_reports(state, dry_run=False) == (3, 0)
    assert await _keys(state) == []


@pytest.mark.parametrize("backend", ["sqlite+local"], indirect=True)  # a file cut short
async def test_a_partial_file_left_by_a_crash_is_swept(
    state: AppState, project: NewProject
) -> None:
    """A report's files are written in place (no temporary file): a crash while writing
    one leaves it partial at its own key, with no row. The sweep removes it like any
    orphan once it is old, and leaves the other reports' files alone."""
    assert isinstance(state.blobs, LocalBlobStore)
    pid = project.project.id
    key = f"{report_key_prefix(pid, str(uuid.uuid4()), utcnow())}.screenshot.png"
    path = state.blobs.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n")  # what was on disk when the power went
    hours_ago = time.time() - 3 * 3600
    os.utime(path, (hours_ago, hours_ago))
    kept = await _report_files(state, pid, str(uuid.uuid4()))  # being accepted right now
    assert await sweep_orphaned_reports(state, dry_run=False) == (1, 0)
    assert await _keys(state) == sorted(kept)


def test_report_of_key_reads_both_layouts() -> None:
    rid = str(uuid.uuid4())
    assert report_of_key(f"reports/3/2026-11/{rid}.screenshot.png") == rid
    assert report_of_key(f"reports/3/2026-11/{rid}.attachment-12") == rid
    assert report_of_key(f"reports/3/{rid}/screenshot.jpg") == rid  # before month folders
    assert report_of_key(f"reports/3/{rid}/attachment-1") == rid
    for other in (
        f"reports/3/{rid}",
        f"reports/3/2026-11/{rid}",
        f"reports/3/2026-11/x{rid}.screenshot.png",
        f"reports/x/2026-11/{rid}.screenshot.png",
        f"reports/3/2026-11/{rid}/screenshot.png",
        f"sessions/3/{rid}/batch",
    ):
        assert report_of_key(other) is None, other
    assert report_key_prefix(3, rid, datetime(2027, 2, 28, 23, 59, tzinfo=UTC)) == (
        f"reports/3/2027-02/{rid}"
    )


async def test_partial_files_of_interrupted_writes_are_swept_after_the_grace(
    state: AppState,
) -> None:
    """A ``.tmp/*.part`` file is what a write leaves when the process dies before the rename.
    Only the local store has them (an S3 object appears only once complete)."""
    if not isinstance(state.blobs, LocalBlobStore):
        assert await sweep_partial_files(state, dry_run=False) == (0, 0)
        return
    tmp = state.blobs.root / ".tmp"
    old = tmp / f"{uuid.uuid4().hex}.part"
    old.write_bytes(b"half")
    hours_ago = time.time() - 2 * REPORT_ORPHAN_GRACE
    os.utime(old, (hours_ago, hours_ago))
    fresh = tmp / f"{uuid.uuid4().hex}.part"
    fresh.write_bytes(b"being written")
    other = tmp / "notes.txt"  # not ours: left alone whatever its age
    other.write_bytes(b"x")
    os.utime(other, (hours_ago, hours_ago))

    assert await sweep_partial_files(state, dry_run=True) == (1, 0)
    assert old.exists()
    assert await sweep_partial_files(state, dry_run=False) == (1, 0)
    assert not old.exists() and fresh.exists() and other.exists()
    # A finished write is untouched by the sweep, and a blob is never in .tmp.
    await state.blobs.write("reports/1/kept.bin", b"whole")
    assert await sweep_partial_files(state, dry_run=False, grace=0) == (1, 0)  # `fresh`
    assert await state.blobs.get_bytes("reports/1/kept.bin") == b"whole"
