"""The reports list (search, dates, pages) and a report's detail page, over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import httpx
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from fieldreport.storage.report_search import reports_per_day
from fieldreport.storage.schema.core import reports
from tests.dashboard.conftest import Accounts, log_in, send_report
from tests.support.images import png_bytes


async def _set_created(state: AppState, report_id: str, when: datetime) -> None:
    async with state.db.write() as conn:
        await conn.execute(
            reports.update().where(reports.c.id == report_id).values(created_at=when)
        )


async def test_search_dates_and_pages(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    ids = []
    for i in range(30):
        sent = await send_report(
            browser_client,
            project,
            {
                "subject": f"Report number {i}",
                "sendercomment": "the invoice PDF is empty" if i % 10 == 3 else "all good",
                "referer": f"https://app.example/page/{i}",
            },
        )
        ids.append(sent["reportid"])
    await _set_created(state, ids[0], datetime(2026, 1, 5, 23, 59, tzinfo=UTC))
    await _set_created(state, ids[1], datetime(2026, 1, 6, 0, 0, 1, tzinfo=UTC))
    await log_in(browser_client, "member@example.com")
    url = f"/projects/{project.project.id}/reports"

    first = await browser_client.get(url)
    assert "30 reports" in first.text
    assert "page 1 of 2" in first.text
    assert "Report number 29" in first.text and "Report number 4<" not in first.text
    second = await browser_client.get(url, params={"page": 2})
    assert "Report number 4<" in second.text and "Report number 29" not in second.text
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text

    found = await browser_client.get(url, params={"q": "INVOICE pdf"})
    assert "3 reports match" in found.text
    for i in (3, 13, 23):
        assert f"Report number {i}<" in found.text
    assert "Report number 4<" not in found.text

    # Search by page URL, ticket number, and a LIKE wildcard taken literally.
    assert "1 report matches" in (await browser_client.get(url, params={"q": "page/17"})).text
    by_ticket = await browser_client.get(url, params={"q": "7"})
    assert f'href="/reports/{ids[6]}"' in by_ticket.text
    assert "0 reports match" in (await browser_client.get(url, params={"q": "%_%"})).text

    day = await browser_client.get(url, params={"from": "2026-01-05", "to": "2026-01-05"})
    assert "1 report matches" in day.text
    assert f'href="/reports/{ids[0]}"' in day.text
    since = await browser_client.get(url, params={"from": "2026-01-06", "to": "2026-01-06"})
    assert f'href="/reports/{ids[1]}"' in since.text and "1 report matches" in since.text
    # Filters survive paging; nonsense parameters are ignored.
    assert "page=2" not in (await browser_client.get(url, params={"q": "invoice"})).text
    odd = await browser_client.get(url, params={"from": "yesterday", "page": "x"})
    assert odd.status_code == 200 and "30 reports" in odd.text


async def test_report_detail_shows_everything(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts
) -> None:
    info = {"plan": "pro", "cart": {"items": [{"sku": "A-1", "qty": 2}], "total": 19.5}}
    sent = await send_report(
        browser_client,
        project,
        {
            "subject": "Checkout <script>alert(1)</script>",
            "sendercomment": "Nothing happens\nwhen I click Pay",
            "senderemail": "jane@example.com",
            "additionalinfo": json.dumps(info),
            "referer": "https://shop.example/cart?step=2",
            "notelist[]": ["Button does not react", "Spinner forever"],
            "recording": "4f1c7a2e-1111-4222-8333-944455556666",
        },
        files=[
            ("file", ("shot.png", png_bytes(), "image/png")),
            ("attachment", ("console.html", b"<script>alert(1)</script>", "text/html")),
        ],
    )
    await log_in(browser_client, "member@example.com")
    page = await browser_client.get(f"/reports/{sent['reportid']}")
    html = page.text
    assert page.status_code == 200
    assert "Checkout &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert "Nothing happens<br>when I click Pay" in html
    assert 'href="mailto:jane@example.com"' in html
    assert "Chrome 120.0" in html and "Windows 10" in html
    assert "127.0.0.1" in html
    assert 'href="https://shop.example/cart?step=2"' in html
    assert "<li>Button does not react</li>" in html and "<li>Spinner forever</li>" in html
    # Additional info as a collapsible tree with its keys and values.
    assert 'class="jsontree"' in html and "<details" in html
    assert (
        '<span class="j-key">&#34;sku&#34;</span>: <span class="j-str">&#34;A-1&#34;</span>' in html
    )
    assert '<span class="j-num">19.5</span>' in html
    assert "4f1c7a2e-1111-4222-8333-944455556666" in html

    shot = await browser_client.get(f"/reports/{sent['reportid']}/screenshot")
    assert shot.status_code == 200 and shot.content == png_bytes()
    assert shot.headers["content-type"] == "image/png"
    att = await browser_client.get(f"/reports/{sent['reportid']}/attachments/1")
    assert att.content == b"<script>alert(1)</script>"
    assert att.headers["content-type"] == "application/octet-stream"
    assert att.headers["content-disposition"] == 'attachment; filename="console.html"'
    assert (
        await browser_client.get(f"/reports/{sent['reportid']}/attachments/2")
    ).status_code == 404
    assert (await browser_client.get("/reports/no-such-report")).status_code == 404


async def test_plain_additional_info_and_unsafe_page_urls(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts
) -> None:
    sent = await send_report(
        browser_client,
        project,
        {"subject": "x", "additionalinfo": "{not json", "referer": "javascript:alert(1)"},
    )
    await log_in(browser_client, "member@example.com")
    html = (await browser_client.get(f"/reports/{sent['reportid']}")).text
    assert '<pre class="raw">{not json</pre>' in html
    assert 'href="javascript:' not in html


async def test_projects_page_charts_reports_per_day(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    for _ in range(3):
        await send_report(browser_client, project, {"subject": "today"})
    await log_in(browser_client, "member@example.com")
    html = (await browser_client.get("/")).text
    assert "<strong>3</strong> reports" in html
    assert 'aria-label="3 reports in the last 30 days"' in html
    today = datetime.now(UTC).date().isoformat()
    assert f"<title>{today}: 3 reports</title>" in html
    assert html.count('<rect class="bar') == 30


async def test_reports_per_day_buckets_by_utc_day(
    project: NewProject, state: AppState, browser_client: httpx.AsyncClient
) -> None:
    ids = [
        (await send_report(browser_client, project, {"subject": str(i)}))["reportid"]
        for i in range(4)
    ]
    await _set_created(state, ids[0], datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC))
    await _set_created(state, ids[1], datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC))
    await _set_created(state, ids[2], datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC))
    await _set_created(state, ids[3], datetime(2026, 2, 1, 12, 0, 0, tzinfo=UTC))  # too old
    async with state.db.read() as conn:
        series = await reports_per_day(conn, [project.project.id], days=3, today=date(2026, 3, 3))
        assert (await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar() == 4
    assert series[project.project.id] == [
        (date(2026, 3, 1), 1),
        (date(2026, 3, 2), 2),
        (date(2026, 3, 3), 0),
    ]
    assert date(2026, 3, 3) - timedelta(days=2) == series[project.project.id][0][0]
