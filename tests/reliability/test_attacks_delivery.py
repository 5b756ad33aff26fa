"""Attacks on the delivery side: XML external entities and entity expansion against the
reference receiver (``fieldreport receive``), SSRF through destinations.

Referenced, not repeated: XML injection through report fields into the xml format is
tests/delivery/test_formats.py::test_xml_escapes_everything_and_validates; SSRF refusals
at add time and send time are tests/delivery/test_cli.py and tests/delivery/test_ssrf.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fieldreport.delivery.receiver", reason="needs the reference receiver")

from fieldreport.delivery.formats.xml import NAMESPACE
from fieldreport.delivery.receiver import ReceiverConfig, receiver_app
from tests.reliability.conftest import Record

SECRET_TEXT = "top-secret-line-from-the-receivers-disk"


async def _push(out: Path, body: str) -> httpx.Response:
    app = receiver_app(ReceiverConfig(out=out))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        return await client.post("/", content=body, headers={"Content-Type": "application/xml"})


def _stored(out: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


async def test_attack_xml_external_entity_against_the_receiver(
    tmp_path: Path, record: Record
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_TEXT)
    out = tmp_path / "out"
    report_id = str(uuid.uuid4())
    body = (
        f'<?xml version="1.0"?><!DOCTYPE report [<!ENTITY xxe SYSTEM "{secret.as_uri()}">'
        f'<!ENTITY net SYSTEM "http://127.0.0.1:9/x">]>'
        f'<report xmlns="{NAMESPACE}" version="1"><reportid>{report_id}</reportid>'
        "<subject>before &xxe; &net; after</subject></report>"
    )
    resp = await _push(out, body)
    assert resp.status_code in (200, 400), resp.text  # stored without the entity, or refused
    assert SECRET_TEXT not in _stored(out)
    record(
        "attack",
        "XML external entities (a local file and a network URL) in a push to `fieldreport receive`",
        "entities are never resolved: nothing of the file is stored, no request is made",
        status=resp.status_code,
    )


async def test_attack_xml_entity_expansion_bomb_against_the_receiver(
    tmp_path: Path, record: Record
) -> None:
    levels = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE report [<!ENTITY l0 "lol">{levels}]>'
        f'<report xmlns="{NAMESPACE}" version="1"><reportid>{uuid.uuid4()}</reportid>'
        "<subject>&l9;</subject></report>"
    )
    started = time.monotonic()
    resp = await _push(tmp_path / "out", body)
    elapsed = time.monotonic() - started
    assert elapsed < 5, "the entities were expanded"
    assert "lollollol" not in _stored(tmp_path / "out")
    record(
        "attack",
        "billion laughs (10^9 `lol` through 10 nested entities) pushed to `fieldreport receive`",
        "not expanded: answered at once, nothing large stored",
        status=resp.status_code,
        seconds=round(elapsed, 3),
    )


async def test_attack_forged_file_links(
    client: httpx.AsyncClient, project: object, record: Record
) -> None:
    """Signed download links with forged, non-ASCII or odd-digit signatures and expiries."""
    report_id = str(uuid.uuid4())
    for query in (
        {"expires": "9999999999", "sig": "0" * 40},
        {"expires": "9999999999", "sig": "ë.Ò\x15"},
        {"expires": "³", "sig": "abc"},
        {"expires": "-1", "sig": "abc"},
        {"expires": str(10**30), "sig": "abc"},
    ):
        resp = await client.get(f"/api/v1/delivery-files/{report_id}/screenshot", params=query)
        assert resp.status_code == 403, (query, resp.text)
    resp = await client.get("/api/v1/delivery-files/..%2F..%2Fetc/passwd", params=query)
    assert resp.status_code in (403, 404)
    record(
        "attack",
        "forged signed file links: wrong, non-ASCII and odd-digit signatures and expiries, "
        "traversal in the path (found by schemathesis: non-ASCII was a 500)",
        "403 for each; nothing served",
    )
