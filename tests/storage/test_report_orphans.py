"""Report files whose report never committed (a crash between the blob write and the commit)
are swept by ``gc --orphans``, once older than the grace period; committed reports and
reports being accepted right now are never touched. Both backends (SQLite + local
directory, PostgreSQL + S3)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import pytest

from fieldreport.retention import REPORT_ORPHAN_GRACE, sweep_orphaned_reports
from fieldreport.state import AppState
from fieldreport.storage.blobs import LocalBlobStore
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report
from fieldreport.storage.schema.base import utcnow


async def _report_files(state: AppState, pid: int, report_id: str) -> list[str]:
    keys = [f"reports/{pid}/{report_id}/screenshot.png", f"reports/{pid}/{report_id}/attachment-1"]
    for key in keys:
        await state.blobs.write(key, b"file bytes")
    await state.blobs.flush()
    return keys


async def _keys(state: AppState) -> list[str]:
    return sorted([k async for k in state.blobs.list("reports")])


async def test_sweep_deletes_old_files_of_reports_that_never_committed(
    state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    committed = str(uuid.uuid4())
    committed_keys = await _report_files(state, pid, committed)
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
    orphan_keys = await _report_files(state, pid, str(uuid.uuid4()))
    await state.blobs.put_bytes(f"reports/{pid}/stray", b"not a report file")  # wrong depth

    # Just written: may be a report being accepted right now, its row not yet committed.
    assert await sweep_orphaned_reports(state, dry_run=False) == (0, 0)
    assert len(await _keys(state)) == 5

    later = utcnow() + timedelta(seconds=REPORT_ORPHAN_GRACE + 60)
    state.clock = lambda: later
    assert await sweep_orphaned_reports(state, dry_run=True) == (2, 0)
    assert len(await _keys(state)) == 5
    assert await sweep_orphaned_reports(state, dry_run=False) == (2, 0)
    left = await _keys(state)
    assert left == sorted([*committed_keys, f"reports/{pid}/stray"])
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
    young = f"reports/{pid}/{report_id}/attachment-2"
    await state.blobs.write(young, b"still arriving")  # written just now
    assert await sweep_orphaned_reports(state, dry_run=False) == (0, 0)
    assert len(await _keys(state)) == 3
    os.utime(state.blobs.root / young, (hours_ago, hours_ago))
    assert await sweep_orphaned_reports(state, dry_run=False) == (3, 0)
    assert await _keys(state) == []
