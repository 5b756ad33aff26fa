"""The full-stack API (seed 001) over real HTTP, on SQLite + local and PostgreSQL + S3."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from fieldreport.state import AppState
from fieldreport.storage.backend_events import list_events
from fieldreport.storage.projects import NewProject, create_project, rotate_key
from tests.support.recordings import start_session

SEND = "/api/fullstack/v1/send"
BATCH = "/api/fullstack/v1/send-batch"
NO_RECORDING = {
    "success": "false",
    "error": [{"error_name": "", "message": "No BugReplay-Recording-UUID, doing nothing"}],
}
NOT_LOGGED_IN = {
    "success": "false",
    "error": [{"error_name": "ErrUserNotLoggedIn", "message": "User is not logged in!"}],
}


def _event(recording: str, **extra: Any) -> dict[str, Any]:
    body = {
        "uuid": recording,
        "type": "log",
        "payload": '{"a":1,"b":"a sample log text"}',
        "level": "info",
        "timestamp": 1622706694345,
        "metadata": '{"anything_useful":"can be added here"}',
        "title": "sample log today",
        "origin": "Wonderful Linux Server #2",
    }
    body.update(extra)
    return body


def _auth(project: NewProject) -> dict[str, str]:
    return {"Authorization": f"Bearer {project.secret_key}"}


async def _events(state: AppState, recording: str) -> list[Any]:
    async with state.db.read() as conn:
        return await list_events(conn, recording)


async def test_send_success_body_is_the_seed_exactly(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    resp = await client.post(SEND, json=_event(recording), headers=_auth(project))
    assert resp.status_code == 200, resp.text
    assert "x-fieldreport-pending" not in resp.headers
    body = resp.json()
    stored = await _events(state, recording)
    assert len(stored) == 1
    assert body == {
        "success": "true",
        "data": {
            "data": {
                "ok": {
                    "id": stored[0].id,
                    "timestamp": 1622706694345,
                    "type": "log",
                    "title": "sample log today",
                    "payload": '{"a":1,"b":"a sample log text"}',
                    "uuid": recording,
                    "metadata": '{"anything_useful":"can be added here"}',
                    "origin": "Wonderful Linux Server #2",
                }
            },
            "success": True,
        },
    }
    # key order as in the seed, too
    assert list(body["data"]["data"]["ok"]) == [
        "id", "timestamp", "type", "title", "payload", "uuid", "metadata", "origin",
    ]  # fmt: skip
    assert stored[0].level == "info" and stored[0].pending is False
    # what Starlette's JSONResponse would send, byte for byte
    assert resp.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-length"] == str(len(resp.content))


async def test_wrong_or_missing_key(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    for headers in (
        {},
        {"Authorization": "Bearer frsec_nope"},
        {"Authorization": f"Basic {project.secret_key}"},
        {"Authorization": f"Bearer {project.public_key}"},  # the public key is not enough
    ):
        resp = await client.post(SEND, json=_event(recording), headers=headers)
        assert resp.status_code == 401
        assert resp.content == json.dumps(NOT_LOGGED_IN, separators=(",", ":")).encode()
        assert resp.headers["content-type"] == "application/json"
    assert await _events(state, recording) == []


async def test_validation_one_entry_per_problem(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    resp = await client.post(SEND, json=_event(recording, type="something"), headers=_auth(project))
    assert resp.status_code == 400
    assert resp.json() == {
        "success": "false",
        "error": [{"error_name": "", "message": "Type must be 'log' or 'exception'"}],
    }

    bad = {"uuid": recording, "type": "trace", "timestamp": "1622706694345", "payload": 5}
    resp = await client.post(SEND, json=bad, headers=_auth(project))
    assert resp.status_code == 400
    messages = [e["message"] for e in resp.json()["error"]]
    assert resp.json()["success"] == "false"
    assert all(e["error_name"] == "" for e in resp.json()["error"])
    assert messages == [
        "Type must be 'log' or 'exception'",
        "Timestamp must be an integer (unix milliseconds)",
        "Payload must be a string (serialize JSON payloads to a string)",
    ]

    resp = await client.post(SEND, json={"type": "log"}, headers=_auth(project))
    messages = [e["message"] for e in resp.json()["error"]]
    assert len(messages) == 3
    assert messages[0].startswith("UUID is required")
    assert messages[1].startswith("Timestamp is required")
    assert messages[2].startswith("Payload is required")

    seconds = await client.post(
        SEND, json=_event(recording, timestamp=1622706694), headers=_auth(project)
    )
    assert seconds.status_code == 400
    assert "looks like seconds" in seconds.json()["error"][0]["message"]
    micros = await client.post(
        SEND, json=_event(recording, timestamp=1622706694345000), headers=_auth(project)
    )
    assert "looks like microseconds" in micros.json()["error"][0]["message"]
    floats = await client.post(
        SEND, json=_event(recording, timestamp=1622706694345.5), headers=_auth(project)
    )
    assert floats.json()["error"][0]["message"].startswith("Timestamp must be an integer")
    # JSON allows an escaped lone surrogate; no database stores one: refused before the write
    lone = json.dumps(_event(recording, payload="a\ud800b"))  # ensure_ascii: "a\\ud800b"
    resp = await client.post(
        SEND, content=lone, headers={**_auth(project), "content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert [e["message"] for e in resp.json()["error"]] == [
        "Payload is not valid Unicode text (it has a lone surrogate escape)"
    ]
    assert await _events(state, recording) == []


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"fullstack_max_payload_bytes": "1KiB"}


async def test_payload_limit_is_configurable(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    ok = await client.post(SEND, json=_event(recording, payload="é" * 512), headers=_auth(project))
    assert ok.status_code == 200  # 1024 bytes of UTF-8: exactly the limit
    over = await client.post(
        SEND, json=_event(recording, payload="x" * 1025, type="nope"), headers=_auth(project)
    )
    assert over.status_code == 400
    assert [e["message"] for e in over.json()["error"]] == [
        "Type must be 'log' or 'exception'",
        "Payload is 1025 bytes, over the limit of 1024 bytes",
    ]
    huge = await client.post(
        SEND, json=_event(recording, payload="x" * 200_000), headers=_auth(project)
    )
    assert huge.status_code == 413
    assert huge.json()["success"] == "false"
    assert "larger than" in huge.json()["error"][0]["message"]


async def test_non_json_and_wrong_content_type_use_the_seed_shape(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    raw = json.dumps(_event(recording))
    wrong_type = await client.post(
        SEND, content=raw, headers={**_auth(project), "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json() == {
        "success": "false",
        "error": [{"error_name": "", "message": "Content-Type must be application/json"}],
    }
    form = await client.post(SEND, data={"uuid": recording}, headers=_auth(project))
    assert form.status_code == 415 and form.json()["success"] == "false"
    broken = await client.post(
        SEND, content=raw[:-3], headers={**_auth(project), "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"][0]["message"].startswith("Request body is not valid JSON")
    not_object = await client.post(SEND, json=[1, 2], headers=_auth(project))
    assert not_object.status_code == 400
    assert not_object.json()["error"] == [
        {"error_name": "", "message": "The event must be a JSON object"}
    ]
    charset = await client.post(
        SEND,
        content=raw,
        headers={**_auth(project), "Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200


async def test_project_a_key_never_attaches_to_project_b_recording(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    b_recording = await start_session(state, other.project.id)
    resp = await client.post(SEND, json=_event(b_recording), headers=_auth(project))
    assert resp.status_code == 404
    assert resp.json() == NO_RECORDING
    batch = await client.post(BATCH, json=[_event(b_recording)], headers=_auth(project))
    assert batch.json()["results"][0] == {"status": 404, **NO_RECORDING}
    assert await _events(state, b_recording) == []
    # project B's own key works, and A cannot read B's events either
    own = await client.post(SEND, json=_event(b_recording), headers=_auth(other))
    assert own.status_code == 200
    read_a = await client.get(
        f"/api/v1/sessions/{b_recording}/backend-events", headers=_auth(project)
    )
    assert read_a.status_code == 404
    read_b = await client.get(
        f"/api/v1/sessions/{b_recording}/backend-events", headers=_auth(other)
    )
    assert [e["uuid"] for e in read_b.json()["events"]] == [b_recording]


async def test_recording_named_by_a_report_is_known(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = str(uuid.uuid4())
    created = await client.post(
        "/api/v1/reports",
        data={"key": project.public_key, "subject": "x", "recording": recording},
    )
    assert created.status_code == 201
    resp = await client.post(SEND, json=_event(recording), headers=_auth(project))
    assert resp.status_code == 200


async def test_event_before_session_start_is_kept_and_joins_the_recording(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = str(uuid.uuid4())
    early = await client.post(SEND, json=_event(recording, title="early"), headers=_auth(project))
    assert early.status_code == 200
    assert early.json()["success"] == "true"
    assert early.json()["data"]["data"]["ok"]["title"] == "early"
    assert "not started yet" in early.headers["x-fieldreport-pending"]
    url = f"/api/v1/sessions/{recording}/backend-events"
    waiting = await client.get(url, headers=_auth(project))
    assert waiting.status_code == 200
    assert waiting.json()["recording_known"] is False
    assert [e["title"] for e in waiting.json()["events"]] == ["early"]

    await start_session(state, project.project.id, recording)  # the browser catches up
    later = await client.post(
        SEND, json=_event(recording, title="later", timestamp=1622706694346), headers=_auth(project)
    )
    assert later.status_code == 200
    got = (await client.get(url, headers=_auth(project))).json()
    assert got["recording_known"] is True
    assert [e["title"] for e in got["events"]] == ["early", "later"]


async def test_batch_has_per_item_results(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    items = [
        _event(recording, title="one"),
        _event(recording, type="bogus"),
        _event(str(uuid.uuid4()), title="early"),
        "not an object",
        _event(recording, title="two", type="exception", level="ERROR"),
    ]
    resp = await client.post(BATCH, json=items, headers=_auth(project))
    assert resp.status_code == 200
    body = resp.json()
    assert body["success"] == "false"
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [200, 400, 200, 400, 200]
    assert body["results"][2]["pending"] is True and "pending" not in body["results"][0]
    assert body["results"][0]["data"]["data"]["ok"]["title"] == "one"
    assert body["results"][1]["error"][0]["message"] == "Type must be 'log' or 'exception'"
    stored = await _events(state, recording)
    assert [(e.title, e.level) for e in stored] == [("one", "info"), ("two", "error")]

    all_ok = await client.post(BATCH, json=[_event(recording)] * 3, headers=_auth(project))
    assert all_ok.json()["success"] == "true"
    ids = [r["data"]["data"]["ok"]["id"] for r in all_ok.json()["results"]]
    assert len(set(ids)) == 3

    for bad, status in (({"not": "a list"}, 400), ([_event(recording)] * 1001, 400)):
        resp = await client.post(BATCH, json=bad, headers=_auth(project))
        assert resp.status_code == status and resp.json()["success"] == "false"
    unauth = await client.post(BATCH, json=[_event(recording)], headers={})
    assert unauth.status_code == 401 and unauth.json() == NOT_LOGGED_IN


async def test_reading_filters_by_time_type_and_level(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    base = int(time.time() * 1000)
    items = [
        _event(recording, title=f"e{i}", timestamp=base + i, type=kind, level=level)
        for i, (kind, level) in enumerate(
            [("log", "debug"), ("log", "info"), ("exception", "error"), ("log", "warning")]
        )
    ]
    assert (await client.post(BATCH, json=items, headers=_auth(project))).json()[
        "success"
    ] == "true"
    url = f"/api/v1/sessions/{recording}/backend-events"

    async def titles(**params: Any) -> list[str]:
        resp = await client.get(url, params=params, headers=_auth(project))
        assert resp.status_code == 200, resp.text
        return [e["title"] for e in resp.json()["events"]]

    assert await titles() == ["e0", "e1", "e2", "e3"]
    assert await titles(since=base + 1, until=base + 2) == ["e1", "e2"]
    assert await titles(type="exception") == ["e2"]
    assert await titles(level="warning,debug") == ["e0", "e3"]
    assert await titles(limit=2, offset=2) == ["e2", "e3"]
    event = (await client.get(url, headers=_auth(project))).json()["events"][2]
    assert set(event) == {
        "id", "uuid", "type", "level", "timestamp", "title", "payload", "metadata", "origin",
        "received_at",
    }  # fmt: skip
    bad = await client.get(url, params={"type": "nope"}, headers=_auth(project))
    assert bad.status_code == 400
    unknown = await client.get(
        f"/api/v1/sessions/{uuid.uuid4()}/backend-events", headers=_auth(project)
    )
    assert unknown.status_code == 404
    assert (await client.get(url)).status_code == 401


async def test_rotated_key_stops_working_at_once(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    first = await client.post(SEND, json=_event(recording), headers=_auth(project))
    assert first.status_code == 200  # the server now remembers this key
    async with state.db.write() as conn:
        new_key = await rotate_key(conn, project.project.id, "secret")
    old = await client.post(SEND, json=_event(recording), headers=_auth(project))
    assert old.status_code == 401 and old.json() == NOT_LOGGED_IN
    old_batch = await client.post(BATCH, json=[_event(recording)], headers=_auth(project))
    assert old_batch.status_code == 401
    new = await client.post(
        SEND, json=_event(recording), headers={"Authorization": f"Bearer {new_key}"}
    )
    assert new.status_code == 200
    assert len(await _events(state, recording)) == 2


async def test_session_started_through_the_recorder_api_is_known(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    started = await client.post(
        "/v1/web/start",
        json={"projectKey": project.public_key, "trackerVersion": "fieldreport-recorder/1.0"},
    )
    assert started.status_code == 200, started.text
    recording = started.json()["sessionID"]
    resp = await client.post(SEND, json=_event(recording), headers=_auth(project))
    assert resp.status_code == 200
    assert "x-fieldreport-pending" not in resp.headers
    [stored] = await _events(state, recording)
    assert stored.pending is False


async def test_chunked_body_is_read_whole_and_bounded_while_it_arrives(
    client: httpx.AsyncClient, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    raw = json.dumps(_event(recording, title="in pieces")).encode()

    async def pieces(data: bytes, size: int) -> Any:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    headers = {**_auth(project), "Content-Type": "application/json"}
    ok = await client.post(SEND, content=pieces(raw, 7), headers=headers)
    assert "content-length" not in ok.request.headers  # sent chunked
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["data"]["ok"]["title"] == "in pieces"
    batch = json.dumps([_event(recording, title="b1"), _event(recording, title="b2")]).encode()
    ok_batch = await client.post(BATCH, content=pieces(batch, 5), headers=headers)
    assert [r["status"] for r in ok_batch.json()["results"]] == [200, 200]
    # no Content-Length to refuse up front: the limit (4 x 1 KiB + 64 KiB) holds mid-stream
    huge = json.dumps(_event(recording, payload="x" * 100_000)).encode()
    over = await client.post(SEND, content=pieces(huge, 8192), headers=headers)
    assert over.status_code == 413
    assert over.json()["error"][0]["message"] == "Request body is larger than 69632 bytes"
    assert [e.title for e in await _events(state, recording)] == ["in pieces", "b1", "b2"]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"type": "http.request", "body": b"{}"}], b"{}"),
        ([{"type": "other"}, {"type": "http.request", "body": b"[1]"}], b"[1]"),
        (
            [
                {"type": "http.request", "body": b"[1,", "more_body": True},
                {"type": "http.request", "body": b"", "more_body": True},
                {"type": "http.request", "body": b"2]"},
            ],
            b"[1,2]",
        ),
        ([{"type": "http.request", "body": b"x" * 11}], 413),
        ([{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 2, 413),
        ([{"type": "http.disconnect"}], 400),
        (
            [
                {"type": "http.request", "body": b"{", "more_body": True},
                {"type": "http.disconnect"},
            ],
            400,
        ),
    ],
)
async def test_the_body_reader_from_its_first_message(
    messages: list[dict[str, Any]], expected: bytes | int
) -> None:
    from fieldreport.ingest.fullstack import Refusal, _body_from

    rest = iter(messages[1:])

    async def receive() -> dict[str, Any]:
        return next(rest)

    try:
        body: bytes | int = await _body_from(receive, messages[0], 10)
    except Refusal as refusal:
        body = refusal.status
    assert body == expected
