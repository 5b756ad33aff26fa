"""Browser to backend: the page's request carries br-recording-uuid, our SDK in the team's
backend picks it up, and the backend's log and exception land under the page's recording."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

import fieldreport.sdk as sdk
from fieldreport.storage.projects import NewProject, set_origins
from tests.conftest import RunningServer, free_port
from tests.web.pages import script_tag, shop_page


@contextlib.asynccontextmanager
async def shop_backend(page: str, handler: logging.Handler) -> AsyncIterator[str]:
    """The team's own app: Starlette with our ASGI middleware and logging handler."""
    log = logging.getLogger("acme.shop")
    log.setLevel(logging.INFO)
    log.addHandler(handler)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def cart(request: Request) -> Response:
        log.info("cart viewed with %d items", 2)
        return JSONResponse({"items": 2})

    async def checkout(request: Request) -> Response:
        log.warning("checkout failed for cart %s: price %s", 42, "-12.50")
        raise ValueError("negative price for item 'Ceramic vase'")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/cart", cart),
            Route("/api/checkout", checkout, methods=["POST"]),
        ]
    )
    port = free_port()
    config = uvicorn.Config(
        sdk.FieldreportASGIMiddleware(app, handler=handler),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
    )
    srv = uvicorn.Server(config)
    srv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 15)
        log.removeHandler(handler)


async def test_backend_logs_land_under_the_recording(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    browser: Any,
) -> None:
    handler = sdk.FieldreportHandler(url=server.url, secret_key=project.secret_key)
    page_html = shop_page(script_tag(server.url, project.public_key, record="true"))
    try:
        async with shop_backend(page_html, handler) as shop_url:
            async with server.state.db.write() as conn:
                await set_origins(conn, project.project.id, add=[shop_url], remove=[])
            page = await browser.new_page()
            await page.goto(shop_url + "/")
            await page.wait_for_function("() => !!window.fieldreport?.recordingId()")
            recording = await page.evaluate("window.fieldreport.recordingId()")
            assert await page.evaluate("fetch('/api/cart').then(r => r.status)") == 200
            assert (
                await page.evaluate("fetch('/api/checkout', {method: 'POST'}).then(r => r.status)")
                == 500
            )
            await page.get_by_role("button", name="Report a bug").click()
            dialog = page.get_by_role("dialog")
            await dialog.get_by_label("Describe the problem").fill("Checkout fails")
            await dialog.get_by_role("button", name="Send report").click()
            await dialog.get_by_text("Thank you!").wait_for()
            await asyncio.to_thread(handler.flush, 10.0)
    finally:
        await asyncio.to_thread(handler.close)

    auth = {"Authorization": f"Bearer {project.secret_key}"}
    resp = await client.get(f"/api/v1/sessions/{recording}/backend-events", headers=auth)
    assert resp.status_code == 200, resp.text
    events = resp.json()["events"]
    by_title = {e["title"]: e for e in events}
    assert by_title["cart viewed with 2 items"]["level"] == "info"
    warning = by_title["checkout failed for cart 42: price -12.50"]
    assert warning["type"] == "log" and warning["level"] == "warning"
    assert all(e["uuid"] == recording for e in events)
    [exception] = [e for e in events if e["type"] == "exception"]
    assert "ValueError" in exception["title"]
    assert "negative price" in exception["payload"]

    # The page's recording shows the failed request, and the report names the recording.
    reports = (await client.get("/api/v1/reports", headers=auth)).json()["reports"]
    report = (await client.get(f"/api/v1/reports/{reports[0]['reportid']}", headers=auth)).json()
    assert report["recording"] == recording
    timeline = (await client.get(f"/api/v1/sessions/{recording}/events", headers=auth)).json()
    failed = [
        e["data"]["payload"] for e in timeline if e["type"] == 5 and e["data"]["tag"] == "network"
    ]
    assert [(f["method"], f["status"]) for f in failed] == [("POST", 500)]
