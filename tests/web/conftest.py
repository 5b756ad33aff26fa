"""Fixtures for the browser tests: Debian's chromium driven by playwright, and a loopback web
server (another origin than fieldreport's) serving the team's test pages."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

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
    """Browser tests exercise the widget, not storage: run them on SQLite + local blobs."""
    return "sqlite+local"


@dataclass
class PageServer:
    """The team's web app on its own loopback origin: HTML pages and JSON handlers."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)
    handlers: dict[str, Callable[[web.Request], web.StreamResponse]] = field(default_factory=dict)
    requests: list[web.Request] = field(default_factory=list)


@pytest.fixture
async def page_server() -> AsyncIterator[PageServer]:
    port = free_port()
    site_state = PageServer(url=f"http://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.StreamResponse:
        site_state.requests.append(request)
        if request.path in site_state.pages:
            return web.Response(text=site_state.pages[request.path], content_type="text/html")
        handler = site_state.handlers.get(request.path)
        if handler is not None:
            result = handler(request)
            return await result if hasattr(result, "__await__") else result  # type: ignore[misc]
        return web.Response(status=404, text="not found")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield site_state
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


def save_screenshot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"widget-{name}.png"
