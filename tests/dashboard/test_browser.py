"""The dashboard in a real browser (Debian's chromium through playwright): log in, list and
filter reports, open one. Saves page screenshots to docs/screenshots/ for people to look at."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.core import reports
from tests.conftest import RunningServer
from tests.dashboard.conftest import PASSWORD, Accounts, send_report

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# A small web shop page, rendered by the browser and sent as the report's screenshot.
SHOP = (Path(__file__).parent / "shop.html").read_text()

SUBJECTS = [
    ("Images missing on product page", "Only alt texts visible."),
    ("Invoice PDF is empty", "The invoice I downloaded has no pages."),
    ("Search returns nothing for 'fern'", "Typing fern shows an empty list."),
    ("Pay button greyed out after card error", "I entered my card twice, the button stays grey."),
    ("Invoice address not saved", "After saving, the old address is back."),
    ("Checkout slow on mobile", "Takes 20 seconds to load."),
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


async def _shot(page: Page, name: str, backend: str) -> None:
    if backend == "sqlite+local":  # one set of pictures is enough
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)


async def _seed(
    server: RunningServer, state: AppState, project: NewProject, browser: Browser
) -> list[dict[str, str]]:
    page = await browser.new_page(viewport={"width": 900, "height": 340})
    await page.set_content(SHOP)
    shop_png = await page.screenshot()
    await page.close()
    rng = random.Random(7)
    sent = []
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=server.url) as client:
        for i in range(40):
            subject, comment = SUBJECTS[i % len(SUBJECTS)]
            info = {
                "app_version": "4.12.0",
                "user": {"id": 1000 + i, "plan": "pro" if i % 3 else "free"},
                "cart": {"items": [{"sku": "FERN-POT", "qty": 2}], "total": 51.5},
                "flags": ["new-checkout", "eu-vat"],
            }
            data: dict[str, str | list[str]] = {
                "subject": subject,
                "sendercomment": comment,
                "senderemail": f"customer{i}@example.com",
                "additionalinfo": json.dumps(info),
                "referer": f"https://shop.example/checkout?step={1 + i % 3}",
                "notelist[]": ["The Pay button does not react", "Card error shown in red"],
            }
            files = [("file", ("screenshot.png", shop_png, "image/png"))] if i >= 36 else None
            if i == 39:
                files = [
                    *(files or []),
                    (
                        "attachment",
                        ("console.log", b"TypeError: total is undefined\n", "text/plain"),
                    ),
                ]
            agent = AGENTS[(i + 1) % 4]
            sent.append(await send_report(client, project, data, files=files, user_agent=agent))
    # Spread them over the last four weeks so the chart has a shape.
    async with state.db.write() as conn:
        for s in sent[:-4]:
            when = now - timedelta(days=rng.randint(1, 27), hours=rng.randint(0, 23))
            await conn.execute(
                reports.update().where(reports.c.id == s["reportid"]).values(created_at=when)
            )
    return sent


async def test_log_in_filter_and_open_a_report(
    server: RunningServer,
    state: AppState,
    project: NewProject,
    accounts: Accounts,
    browser: Browser,
    backend: str,
) -> None:
    sent = await _seed(server, state, project, browser)
    newest = sent[-1]
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()

    # The ticket link of a report leads through the login and back to the report.
    await page.goto(newest["ticketurl"].replace("http://fieldreport.test", server.url))
    await expect(page).to_have_url(f"{server.url}/login?next=%2Freports%2F{newest['reportid']}")
    await _shot(page, "login", backend)
    await page.fill("input[name=email]", "member@example.com")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/reports/{newest['reportid']}")
    await expect(page.locator("h1")).to_contain_text("Pay button greyed out")
    await expect(page.locator("dl.facts")).to_contain_text("Chrome 120.0")
    await expect(page.locator("dl.facts")).to_contain_text("Windows 10")
    await expect(page.locator("ol.notes li")).to_have_count(2)
    await expect(page.locator(".shot img")).to_be_visible()
    # Polled from here, not by wait_for_function: that one compiles its predicate in the page
    # with eval when the first check fails, which the dashboard's CSP (script-src 'self')
    # refuses, so it failed whenever the screenshot had not finished loading yet.
    await expect(page.locator(".shot img")).to_have_js_property("complete", True)
    assert await page.locator(".shot img").evaluate("img => img.naturalWidth") == 900
    await expect(page.locator("ul.files")).to_contain_text("console.log")
    # The JSON tree: open levels show their keys; a click folds one.
    tree = page.locator(".tree-box")
    await expect(tree).to_contain_text('"plan"')
    cart = tree.locator("details", has=page.locator("summary", has_text='"cart"')).first
    await cart.locator("summary").first.click()
    await expect(cart.locator('.j-key:text("\\"total\\"")')).to_be_hidden()
    await cart.locator("summary").first.click()
    await _shot(page, "report", backend)

    # The projects overview with its chart.
    await page.click("a.brand")
    await expect(page.locator(".project h2")).to_have_text("acme")
    await expect(page.locator(".project .stats")).to_contain_text("40 reports")
    await expect(page.locator("svg.chart rect")).to_have_count(30)
    await _shot(page, "projects", backend)

    # The list: pages, a text search, a date filter.
    await page.click(".project h2 a")
    await expect(page.locator("table.reports tbody tr")).to_have_count(25)
    await expect(page.locator("p.count")).to_contain_text("40 reports · page 1 of 2")
    await page.click("a[rel=next]")
    await expect(page.locator("table.reports tbody tr")).to_have_count(15)
    await page.fill("input[name=q]", "invoice")
    await page.click("form.filters button[type=submit]")
    invoice_rows = page.locator("table.reports tbody tr")
    count = await invoice_rows.count()
    assert count == sum(1 for i in range(40) if "Invoice" in SUBJECTS[i % len(SUBJECTS)][0])
    for i in range(count):
        await expect(invoice_rows.nth(i).locator(".subject")).to_contain_text("Invoice")
    await _shot(page, "reports", backend)
    today = datetime.now(UTC).date().isoformat()
    await page.fill("input[name=q]", "")
    await page.fill("input[name=from]", today)
    await page.fill("input[name=to]", today)
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("p.count")).to_contain_text("4 reports match")
    await page.click("table.reports tbody tr .subject a")
    await expect(page).to_have_url(f"{server.url}/reports/{newest['reportid']}")
    await context.close()
