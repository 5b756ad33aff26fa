"""The json (Standard Webhooks) and xml (seed 003, XSD-validated) formats, end to end."""

from __future__ import annotations

import base64
import json
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import etree
from PIL import Image
from standardwebhooks import Webhook, WebhookVerificationError

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.formats.xml import NAMESPACE, schema, xml_body
from fieldreport.delivery.render.pdf import render_pdf
from fieldreport.delivery.sample import sample_bundle
from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import add_dest, only_delivery, submit
from tests.delivery.receivers import Receiver, serve_receiver
from tests.support.images import png_bytes

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NS = {"r": NAMESPACE}


async def deliver(state: AppState) -> None:
    worker = Worker(state)
    try:
        await worker.run_until_idle()
    finally:
        await worker.sender.close()


async def test_json_push_is_signed_and_links_download(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url, format="json", secret=SECRET, token="tok-1",
                       headers=[("Authorization", "Bearer abc")])  # fmt: skip
        report_id = await submit(client, project)
        await deliver(state)
        assert (await only_delivery(state)).status == "delivered"
    (req,) = rx.requests
    assert req.content_type == "application/json"
    assert req.headers["Authorization"] == "Bearer abc"
    payload = Webhook(SECRET).verify(req.body, req.headers)  # the PyPI package verifies us
    assert req.headers["webhook-id"] == "msg_" + report_id.replace("-", "")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(req.body.replace(b"Checkout", b"Checkin"), req.headers)
    assert payload["type"] == "report.created"
    data = payload["data"]
    assert data["reportid"] == report_id and data["token"] == "tok-1"
    assert data["ticketnr"] == 1 and data["notelist"] == ["first note", "second note: ünïcode ✓"]
    assert data["sendercomment"] == "Nothing happens when I click <Pay> & wait"
    shot = data["screenshot"]
    assert shot["content_type"] == "image/png" and "data" not in shot
    assert shot["size"] == len(png_bytes(200, 120)) and data["files_expire_at"]
    link = urlsplit(shot["url"])
    assert link.netloc == "fieldreport.test"  # FIELDREPORT_PUBLIC_URL in the tests
    resp = await client.get(f"{link.path}?{link.query}")
    assert resp.status_code == 200 and resp.content == png_bytes(200, 120)
    tampered = await client.get(f"{link.path}?{link.query.replace('sig=', 'sig=0')}")
    assert tampered.status_code == 403
    expired_query = "&".join(
        "expires=1000" if p.startswith("expires=") else p for p in link.query.split("&")
    )
    assert (await client.get(f"{link.path}?{expired_query}")).status_code == 403


async def test_json_push_inline_when_asked(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url + "#inline", format="json")
        await submit(client, project)
        await deliver(state)
    (req,) = rx.requests
    assert "webhook-signature" not in req.headers  # no secret: unsigned, still identified
    assert req.headers["webhook-id"].startswith("msg_")
    shot = json.loads(req.body)["data"]["screenshot"]
    assert base64.b64decode(shot["data"]) == png_bytes(200, 120) and "url" not in shot


async def test_xml_push_validates_and_carries_the_pdf(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url, format="xml", token="tok-x", secret=SECRET)
        report_id = await submit(client, project)
        await deliver(state)
    (req,) = rx.requests
    assert req.content_type.startswith("application/xml")
    # Webhook.verify parses JSON, so check the XML's signature with the package's signer.
    when = datetime.fromtimestamp(int(req.headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(SECRET).sign(req.headers["webhook-id"], when, req.body.decode())
    assert req.headers["webhook-signature"] == expected
    doc = etree.fromstring(req.body)
    schema().assertValid(doc)
    assert doc.findtext("r:reportid", namespaces=NS) == report_id
    assert doc.findtext("r:token", namespaces=NS) == "tok-x"
    assert doc.findtext("r:sendercomment", namespaces=NS) == (
        "Nothing happens when I click <Pay> & wait"
    )
    assert [n.text for n in doc.findall("r:notelist/r:note", NS)] == [
        "first note",
        "second note: ünïcode ✓",
    ]
    pdf = base64.b64decode(doc.findtext("r:document", namespaces=NS) or "")
    assert pdf.startswith(b"%PDF-")
    shot = doc.find("r:screenshot", NS)
    assert shot is not None and shot.get("contenttype") == "image/png"
    assert base64.b64decode(shot.text or "") == png_bytes(200, 120)


def hostile_bundle() -> ReportBundle:
    import dataclasses

    base = sample_bundle('acme <&> "q"', "http://fieldreport.test")
    return dataclasses.replace(
        base,
        subject="]]><!ENTITY x SYSTEM 'file:///etc/passwd'>&x; \x00\x07\x1b control",
        sendercomment="<script>alert(1)</script> & \ud800 lone surrogate",
        notelist=["</note><note>injected", "emoji 🐛 and RTL שלום"],
        backend_events=[{"level": "error", "message": "boom </event>", "ts": 1}],
        recording="rec-1",
    )


def test_xml_escapes_everything_and_validates() -> None:
    bundle = hostile_bundle()
    import dataclasses

    body = xml_body(dataclasses.replace(bundle, pdf=render_pdf(bundle)), token="t<&>")
    doc = etree.fromstring(body)
    schema().assertValid(doc)
    assert doc.findtext("r:token", namespaces=NS) == "t<&>"
    subject = doc.findtext("r:subject", namespaces=NS) or ""
    assert subject.startswith("]]><!ENTITY x SYSTEM") and "\x00" not in subject
    assert "\ufffd\ufffd\ufffd control" in subject
    assert [n.text for n in doc.findall("r:notelist/r:note", NS)] == bundle.notelist
    (event,) = doc.findall("r:backendevents/r:event", NS)
    assert json.loads(event.text or "") == bundle.backend_events[0]
    assert b"<!ENTITY" not in body  # only ever text, never markup


def test_xml_schema_rejects_what_it_should() -> None:
    xsd = schema()
    bad = f'<report xmlns="{NAMESPACE}" version="1"><reportid>nope</reportid></report>'
    assert not xsd.validate(etree.fromstring(bad))


def test_pdf_renders_text_and_screenshot(tmp_path: Path) -> None:
    """Rasterise the PDF (poppler's pdftoppm) and look at it: text at the top, the sample
    screenshot's blue title bar and red box further down."""
    pdf = render_pdf(hostile_bundle())
    assert pdf.startswith(b"%PDF-")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(tmp_path / "r.pdf"),
         str(tmp_path / "page")],
        check=True,
    )  # fmt: skip
    (png,) = tmp_path.glob("page*.png")
    with Image.open(png) as page:
        rgb = page.convert("RGB")
        colors = Counter(rgb.get_flattened_data())
    blue = sum(n for (r, g, b), n in colors.items() if b > 120 and r < 80)
    red = sum(n for (r, g, b), n in colors.items() if r > 180 and g < 80 and b < 80)
    dark = sum(n for (r, g, b), n in colors.items() if r + g + b < 150)
    assert blue > 500 and red > 50 and dark > 300, (blue, red, dark)
