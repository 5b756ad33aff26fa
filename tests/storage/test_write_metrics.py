"""The write path's counters on /metrics, moved by real requests to a real server.

Events, a report with a screenshot and a session batch over loopback HTTP; /metrics scraped
before and after and parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.support.images import png_bytes
from tests.support.recordings import start_session

SEND = "/api/fullstack/v1/send"
COUNTERS = (
    "fieldreport_db_write_transactions",
    "fieldreport_db_write_transactions_failed",
    "fieldreport_db_write_jobs",
    "fieldreport_db_write_jobs_failed",
    "fieldreport_db_write_items",
    "fieldreport_blob_flushes",
    "fieldreport_blob_flushes_failed",
    "fieldreport_blob_flush_waits",
    "fieldreport_blobs_flushed",
)


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """The write-path counters of the server's /metrics (each must be there, typed counter)."""
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        if family.name in COUNTERS:
            assert family.type == "counter", family
            assert "this server process" in family.documentation
            [sample] = family.samples
            assert sample.name == family.name + "_total"
            found[family.name] = sample.value
    assert sorted(found) == sorted(COUNTERS)
    return found


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in COUNTERS}


def _event(recording: str, n: int) -> dict[str, object]:
    return {
        "uuid": recording,
        "type": "log",
        "payload": json.dumps({"n": n}),
        "level": "info",
        "timestamp": 1622706694345 + n,
        "title": "write metrics",
    }


async def test_concurrent_event_requests_are_jobs_sharing_transactions(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    before = await scrape(client)
    requests = 30
    answers = await asyncio.gather(
        *(client.post(SEND, json=_event(recording, i), headers=auth) for i in range(requests))
    )
    assert [a.status_code for a in answers] == [200] * requests
    delta = moved(before, await scrape(client))
    # one job (a submit_many) and one item per request; they shared commits
    assert delta["fieldreport_db_write_jobs"] == requests
    assert delta["fieldreport_db_write_items"] == requests
    assert 1 <= delta["fieldreport_db_write_transactions"] <= requests
    assert (
        delta["fieldreport_db_write_transactions"]
        == state.writer.transactions - (before["fieldreport_db_write_transactions"])
    )
    assert delta["fieldreport_db_write_jobs_failed"] == 0
    assert delta["fieldreport_db_write_transactions_failed"] == 0
    assert delta["fieldreport_blob_flushes"] == 0  # events have no blobs


async def test_a_report_with_a_screenshot_waits_for_one_flush(
    client: httpx.AsyncClient, project: NewProject, state: AppState, backend: str
) -> None:
    before = await scrape(client)
    resp = await client.post(
        "/api/v1/reports",
        data={"key": project.public_key},
        files={"file": ("s.png", png_bytes(), "image/png")},
    )
    assert resp.status_code == 201, resp.text
    after = await scrape(client)
    delta = moved(before, after)
    assert delta["fieldreport_db_write_jobs"] == 1
    assert delta["fieldreport_db_write_transactions"] == 1
    if backend == "sqlite+local":
        assert delta["fieldreport_blob_flushes"] >= 1
        assert delta["fieldreport_blob_flush_waits"] == 1
        assert delta["fieldreport_blobs_flushed"] >= 1  # the screenshot
    else:  # S3: every PUT is durable as it returns; no group flush, the counters stay 0
        assert [v for k, v in after.items() if k.startswith("fieldreport_blob")] == [0] * 4
    assert delta["fieldreport_blob_flushes_failed"] == 0


async def test_a_session_batch_is_one_job(client: httpx.AsyncClient, project: NewProject) -> None:
    started = await client.post(
        "/v1/web/start", json={"projectKey": project.public_key, "trackerVersion": "t/1"}
    )
    assert started.status_code == 200, started.text
    headers = {
        "Authorization": f"Bearer {started.json()['token']}",
        "Content-Type": "application/json",
    }
    batch = json.dumps([{"type": 3, "timestamp": 1, "data": {}}]).encode()
    before = await scrape(client)
    ok = await client.post("/v1/web/append", content=batch, headers=headers)
    assert ok.status_code == 200, ok.text
    delta = moved(before, await scrape(client))
    assert delta["fieldreport_db_write_jobs"] == 1
    assert delta["fieldreport_db_write_items"] == 1
    assert delta["fieldreport_db_write_transactions"] == 1
