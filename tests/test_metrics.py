"""/metrics and request ids over real HTTP."""

from __future__ import annotations

import json
import logging

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
