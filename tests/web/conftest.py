"""Fixtures for the browser tests: Debian's chromium driven by playwright, and a loopback web
server (another origin than fieldreport's) serving the team's test pages."""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image, ImageChops

from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

playwright_api = pytest.importorskip("playwright.async_api")
if not shutil.which(CHROMIUM):
    pytest.skip("chromium is not installed (scripts/test installs it)", allow_module_level=True)


@pytest.fixture
def backend() -> str:
    """Browser tests exercise the widget, not storage: SQLite + local blobs, except where a
    test parametrizes ``backend`` itself (the main report test runs on PostgreSQL + S3 too)."""
    return "sqlite+local"


@dataclass
class PageServer:
    """The team's web app on its own loopback origin: HTML pages and JSON handlers."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)
    handlers: dict[str, Callable[[web.Request], web.Response]] = field(default_factory=dict)
    requests: list[web.Request] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve_pages() -> AsyncIterator[PageServer]:
    """A loopback web server on a free port (a new origin each time)."""
    port = free_port()
    site_state = PageServer(url=f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.StreamResponse:
        site_state.requests.append(request)
        if request.path in site_state.pages:
            return web.Response(text=site_state.pages[request.path], content_type="text/html")
        handler = site_state.handlers.get(request.path)
        if handler is not None:
            return handler(request)
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield site_state
    finally:
        await runner.cleanup()


@pytest.fixture
async def page_server() -> AsyncIterator[PageServer]:
    async with serve_pages() as pages:
        yield pages


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def snap(page: Any, name: str) -> Path:
    """Save a screenshot of the page as docs/screenshots/widget-NAME.png for people to look at.

    Rewritten only when it changed visibly, so running the tests does not churn the files."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"widget-{name}.png"
    data = await page.screenshot(animations="disabled", caret="hide")
    if path.exists():
        old = Image.open(path).convert("RGB")
        new = Image.open(io.BytesIO(data)).convert("RGB")
        if old.size == new.size:
            box = ImageChops.difference(old, new).getbbox()
            if box is None or (box[2] - box[0]) * (box[3] - box[1]) < 2500:
                return path
    path.write_bytes(data)
    return path
