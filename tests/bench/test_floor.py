"""The floor app (bench/apps/floor.py) does the unavoidable work for real, and its results
render: a wrong floor would make BENCHMARKS.md's bound wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from bench.apps import floor as floor_app
from bench.suite import session_batch

from bench import payloads, report
from fieldreport.storage.blobs.local import LocalBlobStore
from fieldreport.storage.session_batches import get_batch


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    floor_app.app.state.store = LocalBlobStore(tmp_path / "blobs")
    transport = httpx.ASGITransport(app=floor_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as c:
        yield c


async def test_a_report_screenshot_is_stored_whole(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shot = payloads.screenshot_png()
    body, content_type = payloads.report_multipart(shot)
    resp = await client.post("/reports", content=body, headers={"content-type": content_type})
    assert resp.status_code == 200, resp.text
    stored = [p for p in (tmp_path / "blobs" / "floor").iterdir()]
    assert [p.read_bytes() for p in stored] == [shot]


async def test_a_corrupt_screenshot_is_refused_by_the_png_check(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shot = bytearray(payloads.screenshot_png())
    shot[len(shot) // 2] ^= 0xFF  # inside an IDAT chunk: its CRC no longer matches
    body, content_type = payloads.report_multipart(bytes(shot))
    resp = await client.post("/reports", content=body, headers={"content-type": content_type})
    assert resp.status_code == 400


async def test_the_write_only_floor_stores_without_checking(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    shot = bytearray(payloads.screenshot_png())
    shot[len(shot) // 2] ^= 0xFF  # refused by /reports, stored as it is by /reports/write
    body, content_type = payloads.report_multipart(bytes(shot))
    resp = await client.post("/reports/write", content=body, headers={"content-type": content_type})
    assert resp.status_code == 200, resp.text
    stored = list((tmp_path / "blobs" / "floor").iterdir())
    assert [p.read_bytes() for p in stored] == [bytes(shot)]


async def test_session_batches_are_checked(client: httpx.AsyncClient) -> None:
    assert (await client.post("/sessions", content=session_batch())).status_code == 200
    assert (await client.post("/sessions", content=b'[{"a": 1}, 2]')).status_code == 400


async def _post_batches(client: httpx.AsyncClient, path: str) -> list[bytes]:
    """Two good batches (answered 200) and a bad one (400, not kept) to ``path``; the good."""
    batches = [session_batch(), b'[{"type": 2}]']
    for batch in batches:
        resp = await client.post(path, content=batch)
        assert resp.status_code == 200, resp.text
    assert (await client.post(path, content=b'[{"a": 1}, 2]')).status_code == 400
    return batches


async def test_stored_session_batches_are_committed_in_their_row(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    floor = await floor_app.open_session_floor(tmp_path / "sessions")
    floor_app.app.state.sessions = floor
    try:
        batches = await _post_batches(client, "/sessions/stored")
        async with floor.state.db.read() as conn:
            stored = [await get_batch(conn, floor.session_id, seq) for seq in (1, 2, 3)]
        assert [s[1] if s else None for s in stored] == [*batches, None]
    finally:
        await floor.state.close()


def test_render_floor_states_the_bound() -> None:
    def side(rps: float, cpu: float) -> dict[str, object]:
        return {"rps": rps, "cpu_us": cpu, "p50_ms": 1.0, "p99_ms": 2.0, "runs": [rps]}

    row = {"endpoint": "reports", "ceiling": side(2648, 377), "floor": side(1122, 1060),
           "fieldreport": side(672, 1633), "floor_ratio": 0.424, "ratio": 0.254,
           "of_floor": 0.599}  # fmt: skip
    text = "\n".join(report.render_floor([row]))
    assert "| reports | 2648 (377) | 1122 (1060) | **0.42** | 672 (1633) | 0.25 | 0.60 |" in text
    assert report.render_floor(None) == []


async def test_appended_session_batches_are_in_the_log(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    log = floor_app.AppendLog(tmp_path / "sessions.log")
    floor_app.app.state.log = log
    try:
        batches = await _post_batches(client, "/sessions/appended")
        assert log.flush.waits == 2  # each answer waited for an fdatasync
    finally:
        log.close()
    assert (tmp_path / "sessions.log").read_bytes() == b"".join(batches)


async def test_an_appended_report_screenshot_is_in_the_log(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    log = floor_app.AppendLog(tmp_path / "appended.log")
    floor_app.app.state.log = log
    shot = payloads.screenshot_png()
    body, content_type = payloads.report_multipart(shot)
    try:
        resp = await client.post(
            "/reports/appended", content=body, headers={"content-type": content_type}
        )
        assert resp.status_code == 200, resp.text
        assert log.flush.waits == 1
    finally:
        log.close()
    assert (tmp_path / "appended.log").read_bytes() == shot


def test_the_targets_say_what_the_least_durable_write_allows() -> None:
    rows = [
        {"endpoint": "reports, appended to a log", "floor_ratio": 0.381, "of_floor": 0.512},
        {"endpoint": "sessions", "floor_ratio": 0.74, "of_floor": 0.72},
        {
            "endpoint": "sessions, checked, appended to a log",
            "floor_ratio": 0.546,
            "of_floor": 0.99,
        },
    ]
    text = "\n".join(report.floor_bounds(rows))
    assert "a report's screenshot **0.38** of the ceiling (fieldreport 0.51 of that)" in text
    assert "a checked session batch **0.55** of the ceiling (fieldreport 0.99 of that)" in text
    assert report.floor_bounds(rows[1:2]) == report.floor_bounds(None) == []
