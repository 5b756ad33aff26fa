"""Deliveries on the report page (attempts, Redeliver, PDF) and destinations in the settings,
with the real delivery worker pushing to real loopback receivers."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from fieldreport.app import Service
from fieldreport.delivery.worker import worker_service
from fieldreport.state import AppState
from fieldreport.storage.deliveries import list_deliveries
from fieldreport.storage.destinations import NewDestination, add_destination
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer
from tests.dashboard.conftest import PASSWORD, Accounts, csrf_of, log_in, send_report
from tests.dashboard.test_browser import _shot, browser  # noqa: F401  (fixture)
from tests.delivery.receivers import Receiver, serve_receiver
from tests.support.images import png_bytes


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"allow_private_destinations": True, "delivery_poll_interval": 0.1}


@pytest.fixture
def services() -> list[Service]:
    return [worker_service()]


async def _wait_status(state: AppState, report_id: str, wanted: str) -> None:
    for _ in range(300):  # bounded: 30 s
        async with state.db.read() as conn:
            found = await list_deliveries(conn, report_id=report_id)
        if found and found[0].status == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"delivery of {report_id} never became {wanted!r}")


async def test_failed_delivery_shows_attempts_and_redelivers(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    async with serve_receiver(Receiver(fail_first=1, fail_status=500)) as receiver:
        async with state.db.write() as conn:
            await add_destination(
                conn,
                project.project.id,
                NewDestination(url=receiver.url, format="multipart", retry_schedule=[0.0]),
                backup=False,
            )
        sent = await send_report(
            browser_client,
            project,
            {"subject": "Push me"},
            files=[("file", ("shot.png", png_bytes(), "image/png"))],
        )
        await _wait_status(state, sent["reportid"], "dead")
        await log_in(browser_client, "member@example.com")
        page = await browser_client.get(f"/reports/{sent['reportid']}")
        html = page.text
        assert '<span class="status status-dead">dead</span>' in html
        assert '<td class="num">500</td>' in html
        assert "not now" in html  # the receiver's answer
        assert f'href="/reports/{sent["reportid"]}/report.pdf"' in html

        redeliver = re.search(r'action="(/reports/[^"]+/redeliver)"', html)
        assert redeliver
        resp = await browser_client.post(redeliver.group(1), data={"csrf": csrf_of(html)})
        assert resp.status_code == 303
        await _wait_status(state, sent["reportid"], "delivered")
        page = await browser_client.get(f"/reports/{sent['reportid']}")
        assert '<span class="status status-delivered">delivered</span>' in page.text
        assert page.text.count('<tr class="outcome-') == 2
        assert len(receiver.requests) == 2
        home = (await browser_client.get("/")).text
        assert "1 delivered" in home and "0 dead" in home
        assert "1 delivered</title>" in home

        pdf = await browser_client.get(f"/reports/{sent['reportid']}/report.pdf")
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")


async def test_outsiders_cannot_redeliver(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    sent = await send_report(browser_client, project, {"subject": "x"})
    await log_in(browser_client, "outsider@example.com")
    home = await browser_client.get("/")
    resp = await browser_client.post(
        f"/reports/{sent['reportid']}/deliveries/1/redeliver", data={"csrf": csrf_of(home.text)}
    )
    assert resp.status_code == 404
    assert (await browser_client.get(f"/reports/{sent['reportid']}/report.pdf")).status_code == 404


async def test_destinations_add_test_disable_remove(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    await log_in(browser_client, "admin@example.com")
    pid = project.project.id
    settings_url = f"/projects/{pid}/settings"
    csrf = csrf_of((await browser_client.get(settings_url)).text)
    async with serve_receiver(Receiver()) as good, serve_receiver(Receiver(status=500)) as bad:
        resp = await browser_client.post(
            f"/projects/{pid}/destinations",
            data={"csrf": csrf, "url": good.url, "format": "json", "token": "s3cret-token"},
        )
        assert resp.status_code == 303
        resp = await browser_client.post(
            f"/projects/{pid}/destinations",
            data={"csrf": csrf, "url": bad.url, "format": "multipart"},
        )
        page = await browser_client.get(settings_url)
        assert good.url in page.text and bad.url in page.text
        assert "s3cret-token" not in page.text
        assert ">primary<" in page.text and ">backup<" in page.text
        ids = [int(x) for x in re.findall(r'/destinations/(\d+)"', page.text)]
        assert len(ids) == 2

        tested = await browser_client.post(
            f"/projects/{pid}/destinations/{ids[0]}", data={"csrf": csrf, "action": "test"}
        )
        assert "<strong>OK</strong>" in tested.text
        assert len(good.requests) == 1
        failed = await browser_client.post(
            f"/projects/{pid}/destinations/{ids[1]}", data={"csrf": csrf, "action": "test"}
        )
        assert "<strong>FAILED</strong>" in failed.text and "status 500" in failed.text

        await browser_client.post(
            f"/projects/{pid}/destinations/{ids[1]}", data={"csrf": csrf, "action": "disable"}
        )
        assert "disabled in the dashboard" in (await browser_client.get(settings_url)).text
        await browser_client.post(
            f"/projects/{pid}/destinations/{ids[1]}", data={"csrf": csrf, "action": "remove"}
        )
        assert bad.url not in (await browser_client.get(settings_url)).text

        # A delivered report counts towards the destination's health.
        sent = await send_report(browser_client, project, {"subject": "healthy"})
        await _wait_status(state, sent["reportid"], "delivered")
        assert "100% ok</span> of 1" in (await browser_client.get(settings_url)).text

    refused = await browser_client.post(
        f"/projects/{pid}/destinations",
        data={"csrf": csrf, "url": "ftp://", "format": "multipart"},
    )
    assert refused.status_code == 400 and "Destination not added" in refused.text


async def test_redeliver_a_failed_delivery_in_the_browser(
    server: RunningServer,
    state: AppState,
    project: NewProject,
    accounts: Accounts,
    browser: Browser,  # noqa: F811
    backend: str,
) -> None:
    async with serve_receiver(Receiver(fail_first=2, fail_status=503)) as receiver:
        async with state.db.write() as conn:
            await add_destination(
                conn,
                project.project.id,
                NewDestination(url=receiver.url, format="json", retry_schedule=[0.0, 0.0]),
                backup=False,
            )
        async with httpx.AsyncClient(base_url=server.url) as client:
            sent = await send_report(
                client,
                project,
                {"subject": "Export to CSV fails", "sendercomment": "Nothing downloads."},
                files=[("file", ("shot.png", png_bytes(320, 200, "white"), "image/png"))],
            )
        await _wait_status(state, sent["reportid"], "dead")

        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{server.url}/reports/{sent['reportid']}")
        await page.fill("input[name=email]", "admin@example.com")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        deliveries = page.locator("#deliveries")
        await expect(deliveries.locator(".delivery-head .status")).to_have_text("dead")
        await expect(deliveries.locator("table.attempts tbody tr")).to_have_count(2)
        await expect(deliveries.locator("table.attempts tbody tr").first).to_contain_text("503")

        await deliveries.get_by_role("button", name="Redeliver").click()
        await expect(page.locator(".flash.ok")).to_contain_text("queued for delivery again")
        for _ in range(100):  # bounded: the worker delivers within a few polls
            status = await deliveries.locator(".delivery-head .status").text_content()
            if status == "delivered":
                break
            await asyncio.sleep(0.1)
            await page.reload()
        await expect(deliveries.locator(".delivery-head .status")).to_have_text("delivered")
        await expect(deliveries.locator("table.attempts tbody tr")).to_have_count(3)
        await expect(deliveries.locator("table.attempts tbody tr").last).to_contain_text("200")
        assert len(receiver.requests) == 3
        await _shot(page, "deliveries", backend)

        await page.goto(f"{server.url}/projects/{project.project.id}/settings")
        await expect(page.locator("#destinations")).to_contain_text("33% ok")
        await page.locator("#destinations").get_by_role("button", name="Test").click()
        await expect(page.locator("#test-result")).to_contain_text("OK")
        await _shot(page, "settings", backend)
        await context.close()


async def test_reports_list_filters_by_delivery_status(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts, state: AppState
) -> None:
    unpushed = await send_report(browser_client, project, {"subject": "before any destination"})
    async with serve_receiver(Receiver(fail_first=1, fail_status=500)) as receiver:
        async with state.db.write() as conn:
            await add_destination(
                conn,
                project.project.id,
                NewDestination(url=receiver.url, format="multipart", retry_schedule=[0.0]),
                backup=False,
            )
        dead = await send_report(browser_client, project, {"subject": "first push fails"})
        await _wait_status(state, dead["reportid"], "dead")
        delivered = await send_report(browser_client, project, {"subject": "second push works"})
        await _wait_status(state, delivered["reportid"], "delivered")
    await log_in(browser_client, "member@example.com")
    url = f"/projects/{project.project.id}/reports"
    everything = (await browser_client.get(url)).text
    assert "3 reports" in everything
    assert '<span class="status status-dead">dead</span>' in everything
    for status, wanted in (("dead", dead), ("delivered", delivered), ("none", unpushed)):
        page = (await browser_client.get(url, params={"delivery": status})).text
        assert "1 report matches" in page, status
        assert f'href="/reports/{wanted["reportid"]}"' in page, status
        assert f'<option value="{status}" selected>' in page
    assert (
        "0 reports match" in (await browser_client.get(url, params={"delivery": "progress"})).text
    )
    assert "3 reports" in (await browser_client.get(url, params={"delivery": "bogus"})).text
