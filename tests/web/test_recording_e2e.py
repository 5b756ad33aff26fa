"""The recorder in a real browser: rrweb batches reach /v1/web/*, the report names the recording,
and the page's own requests carry the br-recording-uuid header."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web

from fieldreport.storage.projects import NewProject, set_origins
from fieldreport.storage.schema.sessions import session_batches
from tests.conftest import RunningServer
from tests.web.conftest import PageServer, serve_pages
from tests.web.pages import script_tag, shop_page

VIEWPORT = {"width": 1280, "height": 800}
HEADER = "br-recording-uuid"


async def _allow(server: RunningServer, project: NewProject, origin: str) -> None:
    async with server.state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[origin], remove=[])


async def _recording_id(page: Any) -> str:
    await page.wait_for_function("() => !!window.fieldreport?.recordingId()")
    return str(await page.evaluate("window.fieldreport.recordingId()"))


async def _events(client: httpx.AsyncClient, project: NewProject, session_id: str) -> list[Any]:
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    resp = await client.get(f"/api/v1/sessions/{session_id}/events", headers=auth)
    assert resp.status_code == 200, resp.text
    events = resp.json()
    assert isinstance(events, list)
    return events


def _custom(events: list[Any], tag: str) -> list[dict[str, Any]]:
    return [e["data"]["payload"] for e in events if e["type"] == 5 and e["data"]["tag"] == tag]


async def test_recording_is_linked_to_the_report(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key, record="true"))
    page_server.handlers["/api/cart"] = lambda request: web.json_response({"items": 2})
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    recording = await _recording_id(page)

    # What the user does: a click, typing in a field, a console error, requests of the page.
    await page.get_by_role("button", name="Add to cart").first.click()
    await page.locator("#coupon").fill("SECRET-COUPON")
    await page.evaluate("console.error('checkout failed', {code: 42})")
    status = await page.evaluate("fetch('/api/cart').then(r => r.status)")
    missing = await page.evaluate("fetch('/api/missing', {method: 'POST'}).then(r => r.status)")
    xhr = await page.evaluate(
        """() => new Promise(resolve => { const x = new XMLHttpRequest();
             x.open('GET', '/api/cart'); x.onloadend = () => resolve(x.status); x.send(); })"""
    )
    assert (status, missing, xhr) == (200, 404, 200)

    await page.get_by_role("button", name="Report a bug").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Checkout fails")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()

    # The page's same-origin requests (fetch and XHR) carried the recording id.
    traced = [r for r in page_server.requests if r.path.startswith("/api/")]
    assert [(r.method, r.path) for r in traced] == [
        ("GET", "/api/cart"),
        ("POST", "/api/missing"),
        ("GET", "/api/cart"),
    ]
    assert all(r.headers.get(HEADER) == recording for r in traced)
    # ...but the page itself (loaded before the session started) did not.
    assert page_server.requests[0].headers.get(HEADER) is None

    auth = {"Authorization": f"Bearer {project.secret_key}"}
    reports = (await client.get("/api/v1/reports", headers=auth)).json()["reports"]
    [report] = [
        (await client.get(f"/api/v1/reports/{r['reportid']}", headers=auth)).json() for r in reports
    ]
    assert report["recording"] == recording

    session = (await client.get(f"/api/v1/sessions/{recording}", headers=auth)).json()
    assert session["platform"] == "web"
    assert session["batch_count"] >= 1
    assert session["tracker_version"].startswith("fieldreport-web/")
    assert [r["reportid"] for r in session["reports"]] == [report["reportid"]]

    events = await _events(client, project, recording)
    types = {e["type"] for e in events}
    assert {2, 4} <= types  # a full snapshot and the page's meta
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    [console_error] = _custom(events, "console")
    assert console_error["level"] == "error"
    assert console_error["message"] == 'checkout failed {"code":42}'
    [failed] = _custom(events, "network")
    assert failed["method"] == "POST" and failed["status"] == 404
    assert failed["url"].endswith("/api/missing")
    # Input values are masked: neither the typed coupon nor the password is in the recording.
    text = json.dumps(events)
    assert "SECRET-COUPON" not in text and "SPRING-2026" not in text and "hunter2" not in text
    # The widget itself (its dialog with the screenshot) is not recorded.
    assert "Describe the problem" not in text


async def test_trace_origins_and_reload(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """Another origin listed in data-trace-origins gets the header (after its CORS preflight);
    an unlisted one does not; after a reload the recording continues, and events that did not
    fit a keepalive request arrive through /v1/web/late."""
    await _allow(server, project, page_server.url)
    async with serve_pages() as api, serve_pages() as unlisted:
        await _trace_origins_and_reload(
            server, client, project, page_server, api, unlisted, browser
        )


async def _trace_origins_and_reload(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    api: PageServer,
    unlisted: PageServer,
    browser: Any,
) -> None:
    other = api.url
    page_server.pages["/"] = shop_page(
        script_tag(
            server.url,
            project.public_key,
            record="true",
            **{"trace-origins": other, "mask-inputs": "false"},
        )
    )

    def cors(request: web.Request) -> web.Response:
        headers = {
            "Access-Control-Allow-Origin": request.headers.get("Origin", "*"),
            "Access-Control-Allow-Headers": HEADER,
        }
        return web.Response(status=204 if request.method == "OPTIONS" else 200, headers=headers)

    api.handlers["/traced"] = cors
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    recording = await _recording_id(page)
    assert await page.evaluate(f"fetch('{other}/traced').then(r => r.status)") == 200
    # An origin that is not listed gets no header (it would need a CORS preflight).
    unlisted.handlers["/plain"] = cors
    assert await page.evaluate(f"fetch('{unlisted.url}/plain').then(r => r.status)") == 200
    assert [(r.method, r.headers.get(HEADER)) for r in unlisted.requests] == [("GET", None)]
    [traced] = [r for r in api.requests if r.path == "/traced" and r.method == "GET"]
    assert [r.method for r in api.requests] == ["OPTIONS", "GET"]  # preflight, then the request
    assert traced.headers.get(HEADER) == recording

    # Leave the page right after a change: the buffer leaves in a keepalive request.
    await page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'KEEPALIVE-MARK';"
        " document.body.append(p); }"
    )
    await page.reload()
    assert await _recording_id(page) == recording  # the same recording continues
    for _ in range(100):
        if "KEEPALIVE-MARK" in json.dumps(await _events(client, project, recording)):
            break
        await page.wait_for_timeout(100)
    assert "KEEPALIVE-MARK" in json.dumps(await _events(client, project, recording))

    # Leave the page with a large unsent buffer (more than a keepalive request may carry).
    await page.evaluate(
        """() => { const big = document.createElement('pre');
             big.textContent = 'x'.repeat(120000); document.body.append(big); }"""
    )
    await page.wait_for_timeout(50)
    await page.reload()
    assert await _recording_id(page) == recording  # the same recording continues
    auth = {"Authorization": f"Bearer {project.secret_key}"}

    async def late_batches() -> int:
        async with server.state.db.read() as conn:
            rows = await conn.execute(
                sa.select(sa.func.count())
                .select_from(session_batches)
                .where(session_batches.c.session_id == recording, session_batches.c.late)
            )
            return int(rows.scalar() or 0)

    for _ in range(100):
        if await late_batches():
            break
        await page.wait_for_timeout(100)
    assert await late_batches() == 1
    events = await _events(client, project, recording)
    assert sum(1 for e in events if e["type"] == 2) >= 2  # a full snapshot per page load
    assert "x" * 1000 in json.dumps(events)  # the big mutation arrived (late)
    session = (await client.get(f"/api/v1/sessions/{recording}", headers=auth)).json()
    assert session["batch_count"] >= 2
    # data-mask-inputs="false": ordinary inputs are recorded, passwords still never.
    assert "SPRING-2026" in json.dumps(events) and "hunter2" not in json.dumps(events)


@pytest.mark.parametrize("settings_overrides", [{"session_max_batch_bytes": 16 * 1024}])
async def test_a_batch_over_the_limit_is_sent_in_parts(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key, record="true"))
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    recording = await _recording_id(page)
    # ~50 KB gzipped of random text (one rrweb event per paragraph) in one flush: three times
    # the server's batch limit.
    await page.evaluate(
        """async () => { for (let i = 0; i < 48; i++) {
             const bytes = crypto.getRandomValues(new Uint8Array(1000));
             const p = document.createElement('p');
             p.textContent = `PART-${i}-` + Array.from(bytes, b => b.toString(16)).join('');
             document.body.append(p);
             await new Promise(resolve => setTimeout(resolve, 5)); } }"""
    )
    await page.get_by_role("button", name="Report a bug").click()  # the report flushes first
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Big page")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    text = json.dumps(await _events(client, project, recording))
    assert all(f"PART-{i}-" in text for i in range(48))
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    session = (await client.get(f"/api/v1/sessions/{recording}", headers=auth)).json()
    assert session["batch_count"] >= 4


@pytest.mark.parametrize("settings_overrides", [{"session_rate_bytes": 1}])
async def test_the_recorder_waits_when_asked_to_slow_down(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """A 429 with Retry-After pauses the uploads (the events are kept); reports still go."""
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key, record="true"))
    page = await browser.new_page(viewport=VIEWPORT)
    appends: list[int] = []

    async def on_response(response: Any) -> None:
        if "/v1/web/append" in response.url and response.request.method == "POST":
            appends.append(response.status)

    page.on("response", on_response)
    await page.goto(page_server.url + "/")
    recording = await _recording_id(page)
    for n in (1, 2, 3):
        await page.get_by_role("button", name="Report a bug").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("Describe the problem").fill(f"Report {n}")
        await dialog.get_by_role("button", name="Send report").click()
        await dialog.get_by_text("Thank you!").wait_for()
        await dialog.get_by_role("button", name="Close", exact=True).click()
    # Once refused, the later reports' flushes wait for Retry-After instead of insisting.
    assert 429 in appends and appends.index(429) == len(appends) - 1, appends
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    reports = (await client.get("/api/v1/reports", headers=auth)).json()["reports"]
    assert len(reports) == 3
    for r in reports:
        full = (await client.get(f"/api/v1/reports/{r['reportid']}", headers=auth)).json()
        assert full["recording"] == recording
