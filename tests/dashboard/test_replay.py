"""Session replay in a real browser: a recorded web session with console, network and backend
events; the list follows playback and a click seeks to an event."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, set_origins
from tests.conftest import RunningServer
from tests.dashboard.conftest import PASSWORD, Accounts, log_in, send_report
from tests.dashboard.test_browser import _shot, browser  # noqa: F401  (fixture)

APP = "https://app.example"


def _node(tag: str, nid: int, children: list[dict[str, Any]], **attrs: str) -> dict[str, Any]:
    return {"type": 2, "tagName": tag, "attributes": attrs, "childNodes": children, "id": nid}


def _text(text: str, nid: int) -> dict[str, Any]:
    return {"type": 3, "textContent": text, "id": nid}


def recording(base: int) -> list[dict[str, Any]]:
    """A small but complete rrweb recording of a checkout page, ten seconds long."""
    css = "body{font:18px sans-serif;margin:0}h1{background:#0b3d2e;color:#fff;padding:16px}"
    page = {
        "type": 0,
        "id": 1,
        "childNodes": [
            {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
            _node(
                "html",
                3,
                [
                    _node("head", 4, [_node("style", 5, [], _cssText=css)]),
                    _node(
                        "body",
                        6,
                        [
                            _node("h1", 7, [_text("Greenleaf Shop", 8)]),
                            _node("button", 9, [_text("Pay now", 10)], id="pay"),
                        ],
                    ),
                ],
            ),
        ],
    }
    mouse = [
        {
            "type": 3,
            "timestamp": base + ms,
            "data": {
                "source": 1,
                "positions": [{"x": 40 + ms // 100, "y": 90, "id": 9, "timeOffset": 0}],
            },
        }
        for ms in range(500, 10001, 500)
    ]
    return sorted(
        [
            {
                "type": 4,
                "timestamp": base,
                "data": {"href": f"{APP}/checkout", "width": 800, "height": 450},
            },
            {
                "type": 2,
                "timestamp": base + 10,
                "data": {"node": page, "initialOffset": {"left": 0, "top": 0}},
            },
            *mouse,
            {
                "type": 5,
                "timestamp": base + 4800,
                "data": {
                    "tag": "network",
                    "payload": {
                        "method": "POST",
                        "url": f"{APP}/api/pay",
                        "status": 402,
                        "startTime": base + 4800,
                        "endTime": base + 4950,
                    },
                },
            },
            {
                "type": 6,
                "timestamp": base + 5200,
                "data": {
                    "plugin": "rrweb/console@1",
                    "payload": {
                        "level": "error",
                        "trace": ["pay (app.js:10:5)"],
                        "payload": ['"Payment failed"', '{"code":402}'],
                    },
                },
            },
            {  # an uncaught error, as fieldreport's recorder sends it
                "type": 5,
                "timestamp": base + 7000,
                "data": {
                    "tag": "error",
                    "payload": {
                        "message": "TypeError: total is undefined",
                        "source": f"{APP}/app.js",
                        "line": 42,
                        "column": 7,
                        "stack": "TypeError: total is undefined\n    at render (app.js:42:7)",
                    },
                },
            },
            {
                "type": 3,
                "timestamp": base + 6000,
                "data": {
                    "source": 0,
                    "texts": [{"id": 10, "value": "Payment failed"}],
                    "attributes": [],
                    "removes": [],
                    "adds": [],
                },
            },
        ],
        key=lambda e: e["timestamp"],
    )


async def record_session(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> tuple[str, int]:
    """Record a web session through the real recording API, and a backend exception for it
    through the full-stack API, five seconds in. Returns (session id, start in ms)."""
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])
    started = await client.post(
        "/v1/web/start",
        json={"projectKey": project.public_key, "trackerVersion": "test-recorder/1"},
        headers={
            "Origin": APP,
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        },
    )
    assert started.status_code == 200, started.text
    body = started.json()
    base = int(time.time() * 1000)
    events = recording(base)
    for part in (events[:8], events[8:]):
        resp = await client.post(
            "/v1/web/append",
            content=json.dumps(part).encode(),
            headers={
                "Authorization": f"Bearer {body['token']}",
                "Origin": APP,
                "Content-Type": "application/json",
            },
        )
        assert resp.status_code == 200, resp.text
    sent = await client.post(
        "/api/fullstack/v1/send",
        headers={"Authorization": f"Bearer {project.secret_key}"},
        json={
            "uuid": body["sessionID"],
            "type": "exception",
            "level": "error",
            "timestamp": base + 5000,
            "title": "PaymentDeclined: card ending 4242 was declined",
            "payload": json.dumps(
                {"order": 1017, "amount": 51.5, "gateway": {"code": "card_declined"}}
            ),
            "metadata": json.dumps({"host": "api-2", "release": "4.12.0"}),
            "origin": "checkout-service",
        },
    )
    assert sent.status_code == 200, sent.text
    return str(body["sessionID"]), base


async def test_replay_follows_playback_and_seeks_to_an_event(
    server: RunningServer,
    state: AppState,
    project: NewProject,
    accounts: Accounts,
    browser: Browser,  # noqa: F811
    backend: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        session_id, _ = await record_session(client, state, project)
        report = await send_report(client, project, {"subject": "x", "recording": session_id})
        await log_in(client, "member@example.com")
        html = (await client.get(f"/reports/{report['reportid']}")).text
        assert f'href="/sessions/{session_id}"' in html
        page_html = (await client.get(f"/sessions/{session_id}")).text
        assert f'href="/reports/{report["reportid"]}"' in page_html
        events = await client.get(f"/sessions/{session_id}/events.json")
        assert [e["timestamp"] for e in events.json()] == sorted(
            e["timestamp"] for e in events.json()
        )
        assert len(events.json()) == 26

    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/sessions/{session_id}")
    await page.fill("input[name=email]", "member@example.com")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/sessions/{session_id}")

    entries = page.locator("#timeline li.entry")
    await expect(entries).to_have_count(4)
    network, console, uncaught = entries.nth(0), entries.nth(2), entries.nth(3)
    await expect(uncaught.locator(".entry-kind")).to_have_text("uncaught error")
    await expect(uncaught.locator(".entry-title")).to_have_text("TypeError: total is undefined")
    await expect(uncaught.locator(".entry-time")).to_have_text("0:07.0")
    await expect(network).to_have_attribute("data-kind", "network")
    await expect(network.locator(".entry-title")).to_have_text("402 https://app.example/api/pay")
    await expect(console).to_have_attribute("data-kind", "console")
    await expect(console.locator(".entry-time")).to_have_text("0:05.2")
    await expect(page.locator(".replayer-wrapper iframe")).to_be_attached()

    # Clicking an entry seeks the player to its time.
    await network.locator(".entry-head").click()
    await expect(page.locator("#replay")).to_have_attribute("data-time", "4800")
    await expect(network).to_have_class("entry kind-network level-error past current")
    await expect(console).to_have_class("entry kind-console level-error")
    await network.locator("details.entry-detail > summary").click()
    await expect(network.locator(".jsontree")).to_contain_text('"POST"')

    # Playing on: the list follows playback, and the replayed page changes at 6 s.
    await page.evaluate("window.fieldreportPlayer.play()")
    await expect(console).to_have_class("entry kind-console level-error past current", timeout=8000)
    frame = page.frame_locator(".replayer-wrapper iframe")
    await expect(frame.locator("button")).to_have_text("Payment failed", timeout=8000)
    await page.evaluate("window.fieldreportPlayer.pause()")
    assert errors == []
    await context.close()


async def test_sessions_are_for_members_only(
    server: RunningServer, state: AppState, project: NewProject, accounts: Accounts
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        session_id, _ = await record_session(client, state, project)
        assert (await client.get(f"/sessions/{session_id}")).status_code == 303
        await log_in(client, "outsider@example.com")
        assert (await client.get(f"/sessions/{session_id}")).status_code == 404
        assert (await client.get(f"/sessions/{session_id}/events.json")).status_code == 404
        backend_url = f"/sessions/{session_id}/backend-events.json"
        assert (await client.get(backend_url)).status_code == 404
        assert (await client.get("/sessions/nope")).status_code == 404


async def test_replay_and_find_the_backend_event_at_its_time(
    server: RunningServer,
    state: AppState,
    project: NewProject,
    accounts: Accounts,
    browser: Browser,  # noqa: F811
    backend: str,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        session_id, _ = await record_session(client, state, project)
        # Without JavaScript the backend events are on the page already.
        await log_in(client, "member@example.com")
        html = (await client.get(f"/sessions/{session_id}")).text
        assert "PaymentDeclined: card ending 4242 was declined" in html
        assert "&#34;card_declined&#34;" in html

    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/sessions/{session_id}")
    await page.fill("input[name=email]", "member@example.com")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/sessions/{session_id}")

    entries = page.locator("#timeline li.entry")
    await expect(entries).to_have_count(4)
    await expect(entries.nth(0)).to_have_attribute("data-kind", "network")
    await expect(entries.nth(1)).to_have_attribute("data-kind", "backend")
    await expect(entries.nth(2)).to_have_attribute("data-kind", "console")
    backend_entry = entries.nth(1)
    await expect(backend_entry.locator(".entry-time")).to_have_text("0:05.0")
    await expect(backend_entry.locator(".entry-title")).to_have_text(
        "PaymentDeclined: card ending 4242 was declined"
    )
    await expect(page.locator(".replayer-wrapper iframe")).to_be_attached()

    # Clicking the backend event seeks the player to its time.
    await backend_entry.locator(".entry-head").click()
    await expect(page.locator("#replay")).to_have_attribute("data-time", "5000")
    await expect(backend_entry).to_have_class("entry kind-backend level-error past current")
    await expect(entries.nth(2)).not_to_have_class("entry kind-console level-error past")
    # Its JSON payload as a tree.
    await backend_entry.locator("details.entry-detail > summary").click()
    await expect(backend_entry.locator(".jsontree")).to_contain_text('"card_declined"')

    # Playing on: the list follows playback, and the replayed page changes at 6 s.
    await page.evaluate("window.fieldreportPlayer.play()")
    await expect(entries.nth(2)).to_have_class(
        "entry kind-console level-error past current", timeout=8000
    )
    frame = page.frame_locator(".replayer-wrapper iframe")
    await expect(frame.locator("button")).to_have_text("Payment failed", timeout=8000)
    await page.evaluate("window.fieldreportPlayer.pause()")
    await _shot(page, "replay", backend)
    assert errors == []
    await context.close()
