"""A COMMIT whose outcome the server cannot know (the connection dies while it travels).

Found by the PostgreSQL restart under load: the report was committed, the server saw an
error, answered 503 and deleted the files, leaving a report that could never be delivered.
The dying connection cannot be timed on demand, so it is injected at the batch writer's
transaction boundary: a transaction that commits for real and then raises, and one that fails
before committing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from fieldreport.storage.reports import list_reports
from tests.reliability.conftest import Record
from tests.support.images import png_bytes


def _failing_transaction(real: Any, *, after_commit: bool) -> Any:
    def transaction(batch: Any) -> Any:  # on the writer's thread
        if after_commit:
            real(batch)  # commits for real
        raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    return transaction


@pytest.mark.parametrize("after_commit", [True, False], ids=["committed", "not-committed"])
async def test_commit_of_unknown_outcome_keeps_a_committed_reports_files(
    client: httpx.AsyncClient,
    state: AppState,
    project: NewProject,
    after_commit: bool,
    record: Record,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        state.writer,
        "_thread_transaction",
        _failing_transaction(state.writer._thread_transaction, after_commit=after_commit),
    )
    resp = await client.post(
        "/api/v1/reports",
        headers={"X-Fieldreport-Key": project.public_key},
        data={"subject": "ambiguous"},
        files={"file": ("s.png", png_bytes(), "image/png")},
    )
    monkeypatch.undo()
    assert resp.status_code == 503 and int(resp.headers["retry-after"]) > 0
    async with state.db.read() as conn:
        stored = await list_reports(conn, project_id=project.project.id, limit=10)
    blobs = [k async for k in state.blobs.list("reports")]
    if after_commit:
        assert len(stored) == 1  # it did commit ...
        assert blobs == [f.blob_key for f in stored[0].files]  # ... and kept its files
        record(
            "fault",
            "the COMMIT's answer is lost (injected: the commit applies, then the connection "
            "error arrives); found by the PostgreSQL restart under load",
            "503 to the client (it retries: at-least-once), the committed report keeps its "
            "files, so it can be delivered",
        )
    else:
        assert stored == [] and blobs == []  # nothing committed: nothing left behind
