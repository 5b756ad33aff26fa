"""bench/commits.py: the write-path counters scraped from a real server, and what a load
moved; and how the report renders them, old results (no counters) included."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bench import commits, report
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.support.recordings import start_session


@pytest.fixture(params=["sqlite+local"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_scrape_and_moved_count_the_requests_of_a_load(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    url = str(client.base_url.join("/metrics"))
    # blocking httpx, as the suite scrapes: on a thread, the server runs on this test's loop
    before = await asyncio.to_thread(commits.scrape, [url])
    assert before is not None
    recording = await start_session(state, project.project.id)
    for i in range(3):  # one after another: a transaction each
        event = {"uuid": recording, "type": "log", "payload": "{}", "timestamp": 1622706694345 + i}
        resp = await client.post(
            "/api/fullstack/v1/send",
            json=event,
            headers={"Authorization": f"Bearer {project.secret_key}"},
        )
        assert resp.status_code == 200, resp.text
    moved = commits.moved(before, await asyncio.to_thread(commits.scrape, [url]))
    assert moved["jobs"] == 3 and moved["transactions"] == 3 and moved["per_commit"] == 1.0
    assert moved["flushes"] == moved["flush_waits"] == 0 and "flushes_per_request" not in moved
    assert "requests/commit 1.0 (3 in 3)" in commits.describe(moved)
    assert commits.moved(before, None) == {}  # an older build: nothing to divide


def test_report_shows_requests_per_commit_and_flushes_per_report(tmp_path: Path) -> None:
    def side(rps: float, **extra: object) -> dict[str, object]:
        return {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0, "runs": [rps], **extra}

    counted = {"transactions": 10, "jobs": 200, "flushes": 8, "flush_waits": 200}
    reports = {"endpoint": "reports", "backend": "sqlite", "processes": 1, "body_bytes": 300,
               "ceiling": side(1000), "ratio": 0.5, "fieldreport_rss_mib": 90.0,
               "fieldreport": side(500, per_commit=20.0, flushes_per_request=0.04,
                                   commit_counts=counted)}  # fmt: skip
    no_files = {**counted, "flushes": 0, "flush_waits": 0}
    events = {**reports, "endpoint": "events",
              "fieldreport": side(900, per_commit=35.5, flushes_per_request=None,
                                  commit_counts=no_files)}  # fmt: skip
    old = {**reports, "backend": "postgresql", "fieldreport": side(400)}  # before the counters
    meta = {"date": "today", "mode": "quick", "rounds": 1, "seconds": 2, "connections": 64}
    report.render({"meta": meta, "ingest": [reports, events, old]}, tmp_path)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| reports | sqlite | 1 | 20.0 | 0.040 (a syncfs per 25 reports) |" in text
    assert "| events | sqlite | 1 | 35.5 | - |" in text
    assert "| reports | postgresql | 1 | n/a | n/a |" in text
    assert "*Requests per commit*" in text
