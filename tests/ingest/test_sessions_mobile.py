"""The mobile recording protocol of seed 002 over real HTTP, on both backends."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, create_project
from fieldreport.storage.schema.sessions import session_batches, sessions
from fieldreport.storage.session_batches import INLINE_BATCH_BYTES
from tests.support.sessions import (
    FakeClock,
    bearer,
    gzip_bomb,
    start,
    stored_anything,
    stored_batches,
)

OCTET = {"Content-Type": "application/octet-stream"}


async def _batches(state: AppState, session_id: str) -> list[sa.Row[tuple[int, bool, int, str]]]:
    async with state.db.read() as conn:
        rows = await conn.execute(
            sa.select(
                session_batches.c.seq,
                session_batches.c.late,
                session_batches.c.size,
                session_batches.c.blob_key,
            )
            .where(session_batches.c.session_id == session_id)
            .order_by(session_batches.c.seq)
        )
        return list(rows)


async def _session_row(state: AppState, session_id: str) -> dict[str, object]:
    async with state.db.read() as conn:
        row = (await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))).one()
    return dict(row._mapping)


@pytest.mark.parametrize("platform", ["ios", "android", "mobile"])
async def test_start_append_late_roundtrip(
    client: httpx.AsyncClient, state: AppState, project: NewProject, platform: str
) -> None:
    clock = FakeClock()
    state.clock = clock
    t0 = clock.now
    resp = await start(
        client,
        platform,
        {
            "projectID": project.project.id,
            "trackerVersion": "1.0.3",
            "revID": "build-77",
            "userOSVersion": "17.4",
            "userDevice": "iPhone15,2",
            "userDeviceType": 1,
            "performance": {"cpu": 6},
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"imagesHashList", "token", "userUUID", "sessionID"}
    assert body["imagesHashList"] == []
    assert uuid.UUID(body["userUUID"]).version == 4  # a new one: the client sent none
    session_id = body["sessionID"]
    assert uuid.UUID(session_id).version == 4

    first = b"\x00\x01binary-messages" * 100
    second = b"\xff" * 5000
    r1 = await client.post(
        f"/v1/{platform}/append", content=first, headers=bearer(body["token"], **OCTET)
    )
    assert r1.status_code == 200, r1.text
    assert r1.json() == {"seq": 1}
    clock.advance(5)
    r2 = await client.post(
        f"/v1/{platform}/late", content=second, headers=bearer(body["token"], **OCTET)
    )
    assert r2.status_code == 200 and r2.json() == {"seq": 2}

    rows = await _batches(state, session_id)
    assert [(r.seq, r.late, r.size) for r in rows] == [
        (1, False, len(first)),
        (2, True, len(second)),
    ]
    assert [data for _, data in await stored_batches(state, session_id)] == [first, second]
    assert [r.blob_key for r in rows] == [None, None]  # small batches live in their rows
    row = await _session_row(state, session_id)
    assert row["platform"] == platform
    assert row["project_id"] == project.project.id
    assert row["batch_count"] == 2 and row["byte_count"] == len(first) + len(second)
    assert row["user_device"] == "iPhone15,2" and row["user_os_version"] == "17.4"
    assert row["rev_id"] == "build-77" and row["tracker_version"] == "1.0.3"
    assert row["user_device_type"] == 1 and row["performance"] == {"cpu": 6}
    assert row["started_at"] == t0 and row["first_batch_at"] == t0
    assert row["last_batch_at"] == clock.now


async def test_project_key_and_user_uuid_are_kept(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    resp = await start(
        client,
        "ios",
        {"projectKey": project.public_key, "trackerVersion": "1", "userUUID": "device-42"},
    )
    assert resp.status_code == 200
    assert resp.json()["userUUID"] == "device-42"


async def test_a_mobile_token_works_on_every_mobile_prefix_but_not_web(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    token = (
        await start(client, "android", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()["token"]
    assert (
        await client.post("/v1/mobile/append", content=b"x", headers=bearer(token))
    ).status_code == 200
    assert (
        await client.post("/v1/ios/append", content=b"y", headers=bearer(token))
    ).status_code == 200
    web = await client.post("/v1/web/append", content=b"[]", headers=bearer(token))
    assert web.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"projectID": 999999, "trackerVersion": "1"},
        {"projectKey": "frpub_nope", "trackerVersion": "1"},
    ],
)
async def test_unknown_project_is_404(
    client: httpx.AsyncClient, project: NewProject, body: dict[str, object]
) -> None:
    resp = await start(client, "ios", body)
    assert resp.status_code == 404
    assert resp.json()["code"] == "unknown_project"


@pytest.mark.parametrize(
    "body",
    [
        {"trackerVersion": "1"},
        {"projectID": "PID"},
        {"projectID": 1},
        {"projectID": 1, "trackerVersion": 7},
        {"projectID": 1, "trackerVersion": "1", "userDeviceType": "phone"},
        {"projectID": 1, "trackerVersion": "1", "userUUID": "x" * 65},
    ],
)
async def test_bad_start_bodies_are_400(
    client: httpx.AsyncClient, project: NewProject, body: dict[str, object]
) -> None:
    resp = await start(client, "ios", body)
    assert resp.status_code == 400, resp.text


async def test_start_needs_json(client: httpx.AsyncClient, project: NewProject) -> None:
    resp = await client.post("/v1/ios/start", content=b"not json")
    assert resp.status_code == 400
    assert (await client.post("/v1/bsd/start", json={})).status_code == 404


async def test_bad_tokens_are_401(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    token = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()["token"]
    version, payload, signature = token.split(".")
    forged = f"{version}.{payload[:-2]}AA.{signature}"
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        bearer("garbage"),
        bearer(forged),
        bearer(f"{version}.{payload}.{signature[:-4]}AAAA"),
        bearer("v1.!!!.###"),
    ):
        resp = await client.post("/v1/ios/append", content=b"data", headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"
    async with state.db.read() as conn:
        count = (
            await conn.execute(sa.select(sa.func.count()).select_from(session_batches))
        ).scalar()
    assert count == 0
    assert [k async for k in state.blobs.list("sessions")] == []


async def test_expiry_and_late_grace_follow_the_clock(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    clock = FakeClock()
    state.clock = clock
    body = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()
    auth = bearer(body["token"])
    clock.advance(2 * 3600 - 1)  # default maximum session length: 2 h
    assert (await client.post("/v1/ios/append", content=b"a", headers=auth)).status_code == 200
    clock.advance(2)
    expired = await client.post("/v1/ios/append", content=b"b", headers=auth)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    assert (await client.post("/v1/ios/late", content=b"c", headers=auth)).status_code == 200
    clock.advance(24 * 3600 - 2)  # default grace: 24 h after expiry
    assert (await client.post("/v1/ios/late", content=b"d", headers=auth)).status_code == 200
    clock.advance(2)
    assert (await client.post("/v1/ios/late", content=b"e", headers=auth)).status_code == 401
    rows = await _batches(state, body["sessionID"])
    assert [(r.seq, r.late) for r in rows] == [(1, False), (2, True), (3, True)]


async def test_oversize_batches_are_413_and_leave_nothing(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    token = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()["token"]
    limit = state.settings.session_max_batch_bytes
    exact = await client.post("/v1/ios/append", content=b"x" * limit, headers=bearer(token))
    assert exact.status_code == 200
    declared = await client.post(
        "/v1/ios/append", content=b"x" * (limit + 1), headers=bearer(token)
    )
    assert declared.status_code == 413

    async def chunked():  # no Content-Length: the limit is enforced while streaming
        for _ in range(5):
            yield b"y" * (limit // 4)

    streamed = await client.post("/v1/ios/append", content=chunked(), headers=bearer(token))
    assert streamed.status_code == 413
    assert await stored_anything(state) == (1, 1)  # the exact one: a row naming its blob


async def test_gzip_bomb_is_413_and_invalid_gzip_400(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    token = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()["token"]
    bomb = gzip_bomb(64 * 1024 * 1024, fill=b"\x00", prefix=b"")
    assert len(bomb) < state.settings.session_max_batch_bytes
    gz = bearer(token, **{"Content-Encoding": "gzip"})
    resp = await client.post("/v1/ios/append", content=bomb, headers=gz)
    assert resp.status_code == 413, resp.text
    bad = await client.post("/v1/ios/append", content=b"\x1f\x8bnot really gzip", headers=gz)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_gzip"
    truncated = await client.post("/v1/ios/append", content=gzip_bomb(2 << 20)[:-20], headers=gz)
    assert truncated.status_code == 400
    br = await client.post(
        "/v1/ios/append", content=b"x", headers=bearer(token, **{"Content-Encoding": "br"})
    )
    assert br.status_code == 415
    assert await stored_anything(state) == (0, 0)


async def test_batches_of_a_deleted_session_are_refused(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    body = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()
    async with state.db.write() as conn:
        await conn.execute(sessions.delete().where(sessions.c.id == body["sessionID"]))
    resp = await client.post("/v1/ios/append", content=b"x", headers=bearer(body["token"]))
    assert resp.status_code == 401
    large = b"x" * (INLINE_BATCH_BYTES + 1)  # written to the blob store, then deleted again
    resp = await client.post("/v1/ios/append", content=large, headers=bearer(body["token"]))
    assert resp.status_code == 401
    assert await stored_anything(state) == (0, 0)


async def test_reading_api_is_per_project(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    body = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()
    await client.post("/v1/ios/append", content=b"abc", headers=bearer(body["token"]))
    report = await client.post(
        "/api/v1/reports",
        data={"key": project.public_key, "subject": "crash", "recording": body["sessionID"]},
    )
    assert report.status_code == 201
    async with state.db.write() as conn:
        other = await create_project(conn, "other")

    mine = bearer(project.secret_key)
    listed = await client.get("/api/v1/sessions", params={"project": "acme"}, headers=mine)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["sessions"]] == [body["sessionID"]]
    one = (await client.get(f"/api/v1/sessions/{body['sessionID']}", headers=mine)).json()
    assert one["batch_count"] == 1 and one["byte_count"] == 3 and one["platform"] == "ios"
    assert [(b["seq"], b["late"], b["size"], b["encoding"]) for b in one["batches"]] == [
        (1, False, 3, "identity")
    ]
    assert [r["reportid"] for r in one["reports"]] == [report.json()["reportid"]]
    raw = await client.get(one["batches"][0]["url"], headers=mine)
    assert raw.status_code == 200 and raw.content == b"abc"
    assert raw.headers["content-type"] == "application/octet-stream"
    missing = await client.get(f"/api/v1/sessions/{body['sessionID']}/batches/2", headers=mine)
    assert missing.status_code == 404
    events = await client.get(f"/api/v1/sessions/{body['sessionID']}/events", headers=mine)
    assert events.status_code == 409  # a mobile session has no rrweb events

    theirs = bearer(other.secret_key)
    assert (
        await client.get(f"/api/v1/sessions/{body['sessionID']}", headers=theirs)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/sessions/{body['sessionID']}/events", headers=theirs)
    ).status_code == 404
    assert (
        await client.get("/api/v1/sessions", params={"project": "acme"}, headers=theirs)
    ).status_code == 403
    assert (await client.get("/api/v1/sessions", headers=theirs)).json()["sessions"] == []
    assert (await client.get(one["batches"][0]["url"], headers=theirs)).status_code == 404
    assert (
        await client.get("/api/v1/sessions", headers=bearer(project.public_key))
    ).status_code == 401


async def test_concurrent_appends_share_commits_and_get_every_number(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    tokens = [
        (await start(client, "ios", {"projectID": pid, "trackerVersion": "1"})).json()
        for _ in range(3)
    ]

    async def push(i: int) -> int:
        body = tokens[i % 3]
        resp = await client.post(
            "/v1/ios/append", content=f"batch {i}".encode(), headers=bearer(body["token"])
        )
        assert resp.status_code == 200, resp.text
        return int(resp.json()["seq"])

    seqs = await asyncio.gather(*(push(i) for i in range(30)))
    for k in range(3):
        mine = sorted(seqs[i] for i in range(30) if i % 3 == k)
        assert mine == list(range(1, 11))
        rows = await _batches(state, tokens[k]["sessionID"])
        assert [r.seq for r in rows] == list(range(1, 11))
        contents = {data for _, data in await stored_batches(state, tokens[k]["sessionID"])}
        assert contents == {f"batch {i}".encode() for i in range(30) if i % 3 == k}
        assert (await _session_row(state, tokens[k]["sessionID"]))["batch_count"] == 10


async def test_listing_pages_by_start_time(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    clock = FakeClock()
    state.clock = clock
    ids = []
    for _ in range(5):
        body = {"projectID": project.project.id, "trackerVersion": "1"}
        ids.append((await start(client, "ios", body)).json()["sessionID"])
        clock.advance(60)
    auth = bearer(project.secret_key)
    first = (await client.get("/api/v1/sessions?limit=2", headers=auth)).json()
    assert [s["id"] for s in first["sessions"]] == [ids[4], ids[3]]
    assert first["next_before"].endswith("Z")
    # Pasted into a URL as is (no encoding needed).
    second = (
        await client.get(f"/api/v1/sessions?limit=2&before={first['next_before']}", headers=auth)
    ).json()
    assert [s["id"] for s in second["sessions"]] == [ids[2], ids[1]]
    unencoded = await client.get(
        "/api/v1/sessions?limit=2&before=2026-05-01T12:04:00+00:00", headers=auth
    )
    assert [s["id"] for s in unencoded.json()["sessions"]] == [ids[3], ids[2]]
    third = (
        await client.get(f"/api/v1/sessions?limit=2&before={second['next_before']}", headers=auth)
    ).json()
    assert [s["id"] for s in third["sessions"]] == [ids[0]] and third["next_before"] is None
    for bad in ("limit=0", "limit=x", "before=yesterday", "before=2026-05-01T12:00:00"):
        assert (await client.get(f"/api/v1/sessions?{bad}", headers=auth)).status_code == 400
