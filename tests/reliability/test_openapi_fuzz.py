"""Schemathesis against our own ``/openapi.json``: every public operation, generated
inputs (valid and invalid), no 5xx, and every answer matches what the document says
(status codes, content types, bodies, headers).

The server is the real ``fieldreport serve`` subprocess on SQLite; requests carry a
valid project key pair, so the handlers behind authentication are reached too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import free_port
from tests.reliability.conftest import Record, create_project
from tests.support.server_proc import ServerProcess

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 30
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}
# Not checked: negative_data_rejection. Unknown query parameters are ignored on purpose
# (old clients keep working), and every request carries our valid keys, so "a required
# header is missing" cannot be generated; invalid data is still sent (negative mode) and
# must get a documented 4xx, never a 5xx.


class Target:
    def __init__(self, url: str, project: dict[str, Any]) -> None:
        self.url = url
        self.public_key = project["public_key"]
        self.secret_key = project["secret_key"]
        started = httpx.post(
            f"{url}/v1/ios/start",
            json={"projectKey": self.public_key, "trackerVersion": "1.0"},
            timeout=10,
        )
        started.raise_for_status()
        self.session_token = started.json()["token"]

    def headers(self, operation: schemathesis.APIOperation) -> dict[str, str]:
        """Valid credentials for the operation: its session token, else the secret key."""
        security = operation.definition.raw.get("security") or []
        token = (
            self.session_token
            if any("sessionToken" in item for item in security)
            else self.secret_key
        )
        return {"X-Fieldreport-Key": self.public_key, "Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data: Path = tmp_path_factory.mktemp("fuzz") / "data"
    project = create_project(["--data-dir", str(data)])
    server = ServerProcess(data, free_port()).start()
    try:
        yield Target(server.url, project)
    finally:
        server.stop()


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, target: Target) -> int:
    """Run generated cases against one operation; returns how many were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        # Framing headers are the HTTP server's business: uvicorn answers a garbage
        # Content-Length with its own 400 before the app runs, which is right.
        generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in FRAMING}
        case.headers = generated
        headers = {**target.headers(operation), **generated}
        case.call_and_validate(base_url=target.url, headers=headers, checks=CHECKS)

    run()
    return sent


def test_every_operation_against_its_schema(target: Target, record: Record) -> None:
    schema = schemathesis.openapi.from_url(target.url + "/openapi.json")
    failures: dict[str, str] = {}
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                counts[operation.label] = counts.get(operation.label, 0) + _fuzz(
                    operation, mode, target
                )
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no parameters: nothing to break
            except (Exception, BaseExceptionGroup) as exc:  # collect them all, then fail
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    assert counts, "the OpenAPI document lists no operations"
    report = "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert not failures, f"{len(failures)} operations failed:\n{report}"
    record(
        "input",
        f"schemathesis: {len(counts)} operations of /openapi.json, valid and invalid "
        f"generated requests (up to {MAX_EXAMPLES} each way)",
        "no 5xx; status codes, content types, bodies and headers as documented",
        operations=sorted(counts),
        requests=sum(counts.values()),
    )
