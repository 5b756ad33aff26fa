"""The exact answers of ``append`` and ``late``: status, body bytes and every header in order.

Pinned so that the way the batch endpoints are served can change (a plain ASGI app instead
of Starlette's request and response objects) without a byte of any answer changing, errors,
CORS headers and the request id included. uvicorn's own ``date`` and ``server`` are left out.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fieldreport.ingest.shedding import InFlight
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, set_origins
from fieldreport.storage.schema.sessions import sessions
from tests.conftest import RunningServer
from tests.support.sessions import FakeClock, events, gz, start

APP = "https://app.example"
RID = (b"x-request-id", b"pin-1")
CORS = [
    (b"access-control-allow-origin", APP.encode()),
    (b"access-control-expose-headers", b"Location, Retry-After"),
    (b"vary", b"Origin"),
]
JSON = (b"content-type", b"application/json")
UNAUTHORIZED = (b"www-authenticate", b"Bearer")

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def _answer(resp: httpx.Response) -> Answer:
    headers = [(k.lower(), v) for k, v in resp.headers.raw if k.lower() not in (b"date", b"server")]
    return resp.status_code, resp.content, headers


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


def _problem(status: int, message: str, code: str, *before: tuple[bytes, bytes]) -> Answer:
    """A problem answer's status, body and the headers before the CORS ones."""
    body = json.dumps({"error": message, "code": code}, separators=(",", ":")).encode()
    return status, body, [*before, _length(body), JSON]


@pytest.fixture
async def web(client: httpx.AsyncClient, state: AppState, project: NewProject) -> dict[str, str]:
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])
    resp = await start(
        client,
        "web",
        {"projectKey": project.public_key, "trackerVersion": "1"},
        headers={"Origin": APP},
    )
    assert resp.status_code == 200, resp.text
    return {str(k): str(v) for k, v in resp.json().items()}


@pytest.fixture
async def ios(client: httpx.AsyncClient, project: NewProject) -> dict[str, str]:
    resp = await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    assert resp.status_code == 200, resp.text
    return {str(k): str(v) for k, v in resp.json().items()}


def _headers(token: str | None, origin: str | None = APP, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "X-Request-ID": "pin-1", **extra}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = origin
    return headers


BATCH = json.dumps(events(0, 3)).encode()


async def test_stored_batches(
    client: httpx.AsyncClient, web: dict[str, str], ios: dict[str, str]
) -> None:
    ok = b'{"seq":1}'
    for path in ("/v1/web/append", "/v1/web/late"):
        resp = await client.post(path, content=BATCH, headers=_headers(web["token"]))
        seq = b'{"seq":%d}' % (1 if path.endswith("append") else 2)
        assert _answer(resp) == (200, seq, [*CORS, _length(seq), JSON, RID])
    # no Origin header (not a browser): no CORS headers
    resp = await client.post(
        "/v1/web/append", content=gz(BATCH), headers=_headers(web["token"], None, **{
            "Content-Encoding": "gzip"
        })
    )  # fmt: skip
    assert _answer(resp) == (200, b'{"seq":3}', [_length(ok), JSON, RID])
    for path in ("/v1/ios/append", "/v1/android/late"):
        resp = await client.post(path, content=b"\x00\x01", headers=_headers(ios["token"], None))
        assert resp.status_code == 200
        assert _answer(resp)[2] == [_length(ok), JSON, RID]


async def test_refused_batches(
    client: httpx.AsyncClient, state: AppState, web: dict[str, str], ios: dict[str, str]
) -> None:
    token = web["token"]
    missing = "missing session token: send `Authorization: Bearer <token>`"
    cases: list[tuple[str, dict[str, str], bytes, Answer, bool]] = [
        # path, headers, body, answer without CORS, with CORS headers after it
        ("/v1/web/append", _headers(None), BATCH,
         _problem(401, missing, "unauthorized", UNAUTHORIZED), True),
        ("/v1/web/late", _headers("v1.abcd." + "A" * 43), BATCH,
         _problem(401, "invalid session token", "unauthorized", UNAUTHORIZED), True),
        ("/v1/web/append", _headers("nope"), BATCH,
         _problem(401, "malformed session token", "unauthorized", UNAUTHORIZED), True),
        ("/v1/ios/append", _headers(token, None), BATCH,
         _problem(401, "this token belongs to a web session", "unauthorized", UNAUTHORIZED),
         False),
        ("/v1/web/append", _headers(ios["token"]), BATCH,
         _problem(401, "this token belongs to a ios session", "unauthorized", UNAUTHORIZED),
         True),
        ("/v1/web/append", _headers(token, "https://evil.example"), BATCH,
         _problem(403, "this session was started from another origin", "origin_not_allowed"),
         False),
        ("/v1/web/append", _headers(token, "null"), BATCH,
         _problem(403, "this session was started from another origin", "origin_not_allowed"),
         False),
        ("/v1/nope/append", _headers(token), BATCH,
         _problem(404, "no such recording protocol 'nope' (use ios, android, mobile, web)",
                  "not_found"), False),
        ("/v1/web/append", _headers(token, **{"Content-Encoding": "br"}), BATCH,
         _problem(415, "unsupported Content-Encoding 'br' (send gzip or none)", "unsupported"),
         True),
        ("/v1/web/append", _headers(token), b"x" * (state.settings.session_max_batch_bytes + 1),
         _problem(413, "request body is larger than the limit of "
                  f"{state.settings.session_max_batch_bytes} bytes", "too_large"), True),
        ("/v1/web/append", _headers(token), b'{"a": 1}',
         _problem(400, "a web batch must be a JSON array of rrweb events: the body is not an "
                  "array", "invalid_batch"), True),
        ("/v1/web/append", _headers(token), b"[1]",
         _problem(400, "a web batch must be a JSON array of rrweb events: an item is not an "
                  "object", "invalid_batch"), True),
        ("/v1/web/late", _headers(token), b"",
         _problem(400, "empty batch", "empty_batch"), True),
        ("/v1/web/append", _headers(token, **{"Content-Encoding": "gzip"}), b"[{}]",
         _problem(400, "invalid gzip body: Error -3 while decompressing data: incorrect header "
                  "check", "invalid_gzip"), True),
        ("/v1/ios/append", _headers(ios["token"], None, **{"Content-Encoding": "gzip"}),
         gz(b"x")[:-4],
         _problem(400, "invalid gzip body: the stream ends before the end of the gzip data",
                  "invalid_gzip"), False),
    ]  # fmt: skip
    for path, headers, body, (status, content, raw), cors in cases:
        resp = await client.post(path, content=body, headers=headers)
        assert _answer(resp) == (status, content, [*raw, *(CORS if cors else []), RID]), path

    async with state.db.write() as conn:
        await conn.execute(sessions.delete().where(sessions.c.id == web["sessionID"]))
    gone = _problem(
        401, "this session no longer exists: start a new session", "unauthorized", UNAUTHORIZED
    )
    for body in (BATCH, json.dumps(events(0, 2000)).encode()):  # in its row, in a blob
        resp = await client.post("/v1/web/append", content=body, headers=_headers(token))
        assert _answer(resp) == (gone[0], gone[1], [*gone[2], *CORS, RID])


async def test_method_not_allowed(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/web/append", headers={"X-Request-ID": "pin-1"})
    status, body, headers = _problem(405, "Method Not Allowed", "method_not_allowed")
    assert _answer(resp) == (status, body, [(b"allow", b"POST"), *headers, RID])


async def test_expired_tokens_and_late_grace(
    client: httpx.AsyncClient, state: AppState, web: dict[str, str]
) -> None:
    clock = FakeClock(state.clock())
    state.clock = clock
    clock.advance(state.settings.session_max_length + 10)
    expired = _problem(
        401, "session token expired: start a new session", "unauthorized", UNAUTHORIZED
    )
    resp = await client.post("/v1/web/append", content=BATCH, headers=_headers(web["token"]))
    assert _answer(resp) == (expired[0], expired[1], [*expired[2], *CORS, RID])
    resp = await client.post("/v1/web/late", content=BATCH, headers=_headers(web["token"]))
    assert _answer(resp) == (200, b'{"seq":1}', [*CORS, _length(b'{"seq":1}'), JSON, RID])


async def test_shed_batches_are_readable_from_any_origin(
    client: httpx.AsyncClient, server: RunningServer, web: dict[str, str]
) -> None:
    app: Any = server.server.config.app
    app.state.in_flight = InFlight(0)  # every request is one too many
    shed = _problem(
        503,
        "server busy: too many requests in flight, try again shortly",
        "overloaded",
        (b"retry-after", b"2"),
    )
    other = "https://other.example"
    other_cors = [(b"access-control-allow-origin", other.encode()), *CORS[1:]]
    for path in ("/v1/web/append", "/v1/web/late"):
        resp = await client.post(path, content=BATCH, headers=_headers(web["token"], other))
        assert _answer(resp) == (shed[0], shed[1], [*shed[2], *other_cors, RID])
    resp = await client.post("/v1/ios/append", content=b"x", headers=_headers("t", None))
    assert _answer(resp) == (shed[0], shed[1], [*shed[2], RID])


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"session_rate_bytes": 100}

    async def test_bytes_per_minute(
        self, client: httpx.AsyncClient, state: AppState, web: dict[str, str]
    ) -> None:
        state.clock = FakeClock(state.clock())
        first = await client.post("/v1/web/append", content=BATCH, headers=_headers(web["token"]))
        assert first.status_code == 200
        resp = await client.post("/v1/web/append", content=BATCH, headers=_headers(web["token"]))
        limited = _problem(
            429, "rate limit exceeded: this project may send 100 bytes per minute", "rate_limited"
        )
        status, body, headers = _answer(resp)
        assert (status, body) == limited[:2]
        assert headers[0][0] == b"retry-after" and int(headers[0][1]) > 0
        assert headers[1:] == [*limited[2], *CORS, RID]
