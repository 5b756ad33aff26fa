"""Per-project rate limits: 429 with Retry-After, refilled by the (injected) clock."""

from __future__ import annotations

import httpx
import pytest

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, create_project
from tests.support.sessions import FakeClock, bearer, start


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"session_rate_sessions": 3, "session_rate_bytes": 6000}


async def test_sessions_per_minute(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    clock = FakeClock()
    state.clock = clock
    body = {"projectID": project.project.id, "trackerVersion": "1"}
    for _ in range(3):
        assert (await start(client, "ios", body)).status_code == 200
    limited = await start(client, "ios", body)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "20"  # one session every 20 s at 3/min

    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    other_body = {"projectID": other.project.id, "trackerVersion": "1"}
    assert (await start(client, "ios", other_body)).status_code == 200  # per project

    clock.advance(20)
    assert (await start(client, "ios", body)).status_code == 200
    assert (await start(client, "ios", body)).status_code == 429


async def test_bytes_per_minute(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    clock = FakeClock()
    state.clock = clock
    token = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()["token"]
    auth = bearer(token)
    assert (
        await client.post("/v1/ios/append", content=b"x" * 4000, headers=auth)
    ).status_code == 200
    limited = await client.post("/v1/ios/append", content=b"x" * 4000, headers=auth)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "20"  # 2000 bytes missing at 100 bytes/s

    async def chunked():
        yield b"y" * 1000

    assert (await client.post("/v1/ios/append", content=chunked(), headers=auth)).status_code == 200
    # The streamed 1000 bytes were charged after the fact: 1000 left, 4000 needs 30 s more.
    again = await client.post("/v1/ios/append", content=b"x" * 4000, headers=auth)
    assert again.status_code == 429 and again.headers["retry-after"] == "30"
    clock.advance(30)
    assert (
        await client.post("/v1/ios/append", content=b"x" * 4000, headers=auth)
    ).status_code == 200
