"""/metrics and request ids over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from fieldreport.logs import JSONFormatter, request_id
from fieldreport.storage.projects import NewProject
from tests.support.images import png_bytes


@pytest.fixture(params=["sqlite+local"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_metrics_count_requests_and_bytes(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    resp = await client.post(
        "/api/v1/reports",
        data={"key": project.public_key},
        files={"file": ("s.png", png_bytes(), "image/png")},
        headers={"X-Request-ID": "req-123"},
    )
    assert resp.status_code == 201
    assert resp.headers["x-request-id"] == "req-123"
    await client.get(f"/api/v1/reports/{resp.json()['reportid']}")  # 401, templated label
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    text = (await client.get("/metrics")).text
    assert (
        'fieldreport_http_requests_total{endpoint="/api/v1/reports",method="POST",status="201"} 1.0'
        in text
    )
    assert 'endpoint="/api/v1/reports/{reportid}",method="GET",status="401"' in text
    assert 'fieldreport_ingest_bytes_total{endpoint="/api/v1/reports"}' in text
    assert "fieldreport_http_request_duration_seconds_bucket" in text


class TestMetricsToken:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"metrics_token": "s3cret"}

    async def test_metrics_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_json_log_lines_carry_the_request_id() -> None:
    token = request_id.set("abc")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
        record.request_id = request_id.get()
        line = json.loads(JSONFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello w" and line["request_id"] == "abc" and line["level"] == "info"


def _counted(text: str, endpoint: str) -> tuple[dict[str, float], float]:
    """Requests by status and the body bytes counted for ``endpoint`` on /metrics."""
    statuses: dict[str, float] = {}
    received = -1.0
    for line in text.splitlines():
        if line.startswith(f'fieldreport_http_requests_total{{endpoint="{endpoint}",'):
            status = line.split('status="', 1)[1].split('"', 1)[0]
            statuses[status] = float(line.rsplit(" ", 1)[1])
        if line.startswith(f'fieldreport_ingest_bytes_total{{endpoint="{endpoint}"}}'):
            received = float(line.rsplit(" ", 1)[1])
    return statuses, received


async def _pieces(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:  # a chunked body: one ASGI message each
        yield piece


async def test_express_routes_that_observe_themselves_are_counted_and_tagged(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    """The full-stack send and the session append report their body bytes, status and
    request id themselves on the express lane (no receive and send wrappers): the same
    samples and header as the wrappers gave, on every way out."""
    send = "/api/fullstack/v1/send"
    auth = {"Authorization": f"Bearer {project.secret_key}", "Content-Type": "application/json"}
    bad = b'{"not": "an event"'  # read whole, then refused: 400
    resp = await client.post(send, content=bad, headers={**auth, "X-Request-ID": "fs-1"})
    assert resp.status_code == 400 and resp.headers["x-request-id"] == "fs-1"
    assert list(resp.headers).count("x-request-id") == 1
    chunked = [b'{"type": "log",', b' "payload": 1']  # several messages, then refused: 400
    resp = await client.post(send, content=_pieces(*chunked), headers=auth)
    assert resp.status_code == 400 and len(resp.headers["x-request-id"]) == 32
    resp = await client.post(send, content=b"[]", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401  # refused before the body is read: no bytes
    assert resp.headers["x-request-id"] != ""

    started = await client.post(
        "/v1/web/start",
        json={"projectKey": project.public_key, "trackerVersion": "t/1"},
    )
    token = started.json()["token"]
    batch = json.dumps([{"type": 3, "timestamp": 1, "data": {}}]).encode()
    session = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ok = await client.post(
        "/v1/web/append", content=batch, headers={**session, "X-Request-ID": "s-1"}
    )
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "s-1"
    assert list(ok.headers).count("x-request-id") == 1
    refused = await client.post("/v1/web/append", content=_pieces(b"[1,", b"2]"), headers=session)
    assert refused.status_code == 400 and len(refused.headers["x-request-id"]) == 32

    text = (await client.get("/metrics")).text
    assert _counted(text, send) == ({"400": 2.0, "401": 1.0}, len(bad) + len(b"".join(chunked)))
    assert _counted(text, "/v1/{platform}/append") == ({"200": 1.0, "400": 1.0}, len(batch) + 5)


async def test_request_ids_the_first_sane_one_or_a_new_one(client: httpx.AsyncClient) -> None:
    twice = await client.get("/healthz", headers=[("X-Request-ID", "a-1"), ("X-Request-ID", "b-2")])
    assert twice.headers["x-request-id"] == "a-1"
    for insane in ("has space", "x" * 65, "semi;colon"):
        new = (await client.get("/healthz", headers={"X-Request-ID": insane})).headers
        assert len(new["x-request-id"]) == 32 and int(new["x-request-id"], 16) >= 0
