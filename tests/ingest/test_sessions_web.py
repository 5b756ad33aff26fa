"""The browser recorder's protocol: JSON arrays of rrweb events, gzip, CORS, events stream."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, set_origins
from fieldreport.storage.schema.sessions import session_batches
from fieldreport.storage.session_batches import INLINE_BATCH_BYTES
from tests.support.sessions import (
    bearer,
    events,
    gz,
    gzip_bomb,
    start,
    stored_anything,
    stored_batches,
)

APP = "https://app.example"


@pytest.fixture
async def allowed(state: AppState, project: NewProject) -> None:
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])


async def _start_web(client: httpx.AsyncClient, project: NewProject) -> dict[str, object]:
    resp = await start(
        client,
        "web",
        {"projectKey": project.public_key, "trackerVersion": "fieldreport-recorder/1.0"},
        headers={"Origin": APP, "User-Agent": "Mozilla/5.0 Recorder"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == APP
    data = resp.json()
    assert isinstance(data, dict)
    return data


def _web(token: object, **extra: str) -> dict[str, str]:
    return bearer(str(token), Origin=APP, **{"Content-Type": "application/json"}, **extra)


async def test_web_roundtrip_events_in_order(
    client: httpx.AsyncClient, state: AppState, project: NewProject, allowed: None
) -> None:
    body = await _start_web(client, project)
    assert body["imagesHashList"] == []
    assert body["maxBatchBytes"] == state.settings.session_max_batch_bytes
    token = body["token"]
    batches = [events(0, 3), events(3, 0), events(3, 50), events(53, 1)]
    for i, batch in enumerate(batches):
        raw = json.dumps(batch, indent=2 if i == 1 else None).encode()
        headers = _web(token)
        if i % 2 == 0:
            raw, headers = gz(raw), _web(token, **{"Content-Encoding": "gzip"})
        resp = await client.post("/v1/web/append", content=raw, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["access-control-allow-origin"] == APP
        assert resp.json() == {"seq": i + 1}
        assert resp.content == b'{"seq":%d}' % (i + 1)  # what JSONResponse rendered
        assert resp.headers["content-type"] == "application/json"
        assert resp.headers["vary"] == "Origin"
    spaced = b'  [ {"type": 4, "timestamp": 1, "data": {"s": " ] "}} ]  \n'
    assert (
        await client.post("/v1/web/late", content=spaced, headers=_web(token))
    ).status_code == 200

    secret = bearer(project.secret_key)
    got = await client.get(f"/api/v1/sessions/{body['sessionID']}/events", headers=secret)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    expected = [e for b in batches for e in b] + [{"type": 4, "timestamp": 1, "data": {"s": " ] "}}]
    assert got.json() == expected

    one = (await client.get(f"/api/v1/sessions/{body['sessionID']}", headers=secret)).json()
    assert one["platform"] == "web" and one["batch_count"] == 5
    assert one["user_agent"] == "Mozilla/5.0 Recorder"
    assert one["events_url"] == f"/api/v1/sessions/{body['sessionID']}/events"
    first = await client.get(one["batches"][0]["url"], headers=secret)
    assert first.headers["content-encoding"] == "gzip"  # served as sent
    assert first.json() == batches[0]  # (httpx inflates it)
    async with state.db.read() as conn:
        encodings = [
            r[0]
            for r in await conn.execute(
                sa.select(session_batches.c.encoding).order_by(session_batches.c.seq)
            )
        ]
    assert encodings == ["gzip", "", "gzip", "", ""]  # stored as sent


async def test_small_batches_live_in_rows_and_large_ones_in_blobs(
    client: httpx.AsyncClient, state: AppState, project: NewProject, allowed: None
) -> None:
    body = await _start_web(client, project)
    token, sid = body["token"], str(body["sessionID"])
    big = [{"type": 3, "timestamp": i, "data": {"pad": "x" * 1000}} for i in range(300)]
    sent = [
        (events(0, 2), False),  # small: in its row
        (big, False),  # over INLINE_BATCH_BYTES: a blob
        (events(2, 3), True),  # small, gzipped
        (big[:150] + big[:150], True),  # large, but small once gzipped: in its row
        (events(5, 1), False),
    ]
    raws = []
    for batch, gzipped in sent:
        raw = json.dumps(batch).encode()
        headers = _web(token)
        if gzipped:
            raw, headers = gz(raw), _web(token, **{"Content-Encoding": "gzip"})
        raws.append(raw)
        resp = await client.post("/v1/web/append", content=raw, headers=headers)
        assert resp.status_code == 200, resp.text
    assert len(raws[1]) > INLINE_BATCH_BYTES >= max(len(r) for r in raws[2:])

    async with state.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    session_batches.c.blob_key.is_(None), session_batches.c.data.is_(None)
                ).order_by(session_batches.c.seq)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (True, False),
        (False, True),
        (True, False),
        (True, False),
        (True, False),
    ]
    assert len([k async for k in state.blobs.list(f"sessions/{project.project.id}/{sid}")]) == 1
    stored = await stored_batches(state, sid)
    assert [data for _, data in stored] == raws  # exactly as sent, wherever stored

    secret = bearer(project.secret_key)
    got = await client.get(f"/api/v1/sessions/{sid}/events", headers=secret)
    assert got.json() == [e for batch, _ in sent for e in batch]
    for seq, (batch, gzipped) in enumerate(sent, start=1):
        one = await client.get(f"/api/v1/sessions/{sid}/batches/{seq}", headers=secret)
        assert one.status_code == 200
        assert one.headers["content-length"] == str(len(raws[seq - 1]))
        assert one.headers["content-type"] == "application/json"
        assert one.headers["x-content-type-options"] == "nosniff"
        assert (one.headers.get("content-encoding") == "gzip") is gzipped
        assert one.json() == batch
    missing = await client.get(f"/api/v1/sessions/{sid}/batches/6", headers=secret)
    assert missing.status_code == 404


async def test_an_empty_session_streams_an_empty_array(
    client: httpx.AsyncClient, project: NewProject, allowed: None
) -> None:
    body = await _start_web(client, project)
    got = await client.get(
        f"/api/v1/sessions/{body['sessionID']}/events", headers=bearer(project.secret_key)
    )
    assert got.json() == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": 1}',
        b"[1, 2]",
        b'[{"a": 1}',
        b'[{"a": 1}] [{"b": 2}]',
        b'[{"a": 1}],[{"b": 2}]',
        b"not json",
        b"",
    ],
)
async def test_a_web_batch_must_be_an_array_of_objects(
    client: httpx.AsyncClient, state: AppState, project: NewProject, allowed: None, raw: bytes
) -> None:
    token = (await _start_web(client, project))["token"]
    resp = await client.post("/v1/web/append", content=raw, headers=_web(token))
    assert resp.status_code == 400, resp.text
    assert resp.headers["access-control-allow-origin"] == APP  # the recorder can read why
    gzipped = await client.post(
        "/v1/web/append", content=gz(raw), headers=_web(token, **{"Content-Encoding": "gzip"})
    )
    assert gzipped.status_code == 400
    assert await stored_anything(state) == (0, 0)


async def test_web_zip_bomb_and_invalid_gzip(
    client: httpx.AsyncClient, state: AppState, project: NewProject, allowed: None
) -> None:
    token = (await _start_web(client, project))["token"]
    headers = _web(token, **{"Content-Encoding": "gzip"})
    bomb = gzip_bomb(state.settings.session_max_inflated_bytes + (4 << 20))  # "[" + blanks
    resp = await client.post("/v1/web/append", content=bomb, headers=headers)
    assert resp.status_code == 413, resp.text
    invalid = await client.post("/v1/web/append", content=b"[{}]", headers=headers)
    assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_gzip"
    assert await stored_anything(state) == (0, 0)


async def test_cors_follows_the_projects_origins(
    client: httpx.AsyncClient, project: NewProject, allowed: None
) -> None:
    evil = await start(
        client,
        "web",
        {"projectKey": project.public_key, "trackerVersion": "1"},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers

    for path in ("/v1/web/start", "/v1/web/append", "/v1/web/late"):
        pre = await client.options(
            path,
            headers={
                "Origin": APP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-encoding, content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == APP
        assert "Authorization" in pre.headers["access-control-allow-headers"]
        assert "Content-Encoding" in pre.headers["access-control-allow-headers"]
        bad = await client.options(
            path,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert bad.status_code == 403

    token = (await _start_web(client, project))["token"]
    elsewhere = await client.post(
        "/v1/web/append",
        content=b"[]",
        headers=bearer(str(token), Origin="https://evil.example"),
    )
    assert elsewhere.status_code == 403
    expired = await client.post("/v1/web/append", content=b"[]", headers=_web("v1.bad.token"))
    assert expired.status_code == 401
    assert expired.headers["access-control-allow-origin"] == APP  # so the recorder restarts


async def test_a_web_token_is_not_a_mobile_token(
    client: httpx.AsyncClient, project: NewProject, allowed: None
) -> None:
    token = (await _start_web(client, project))["token"]
    resp = await client.post("/v1/ios/append", content=b"x", headers=bearer(str(token)))
    assert resp.status_code == 401


async def test_the_protocol_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    for path in ("/v1/{platform}/start", "/v1/{platform}/append", "/v1/{platform}/late"):
        assert "post" in doc["paths"][path]
    assert "post" in doc["paths"]["/v1/{platform}/images"]
    assert "get" in doc["paths"]["/api/v1/sessions/{session_id}/events"]
    assert "SessionStarted" in doc["components"]["schemas"]
