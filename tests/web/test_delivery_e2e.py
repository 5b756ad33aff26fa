"""From the widget to the team's system: a report sent in the browser is pushed by the
server's delivery worker to seed 000's reference PHP receiver, screenshot and notes included."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldreport.app import Service
from fieldreport.delivery import worker
from fieldreport.storage.projects import NewProject, set_origins
from tests.conftest import RunningServer
from tests.delivery import helpers, receivers
from tests.web.conftest import PageServer
from tests.web.pages import script_tag, shop_page


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"allow_private_destinations": True}  # the receiver is on loopback


@pytest.fixture
def services() -> list[Service]:
    return [worker.worker_service()]


async def test_widget_report_arrives_at_the_php_receiver(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
    tmp_path: Path,
) -> None:
    async with server.state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[page_server.url], remove=[])
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key))
    with receivers.php_receiver(tmp_path) as php:
        await helpers.add_dest(server.state, project, php.url, token="MySecurityToken")
        page = await browser.new_page(viewport={"width": 1024, "height": 700})
        await page.goto(page_server.url + "/")
        await page.get_by_role("button", name="Report a bug").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_role("button", name="+ Add a note").click()
        await dialog.get_by_role("textbox", name="Note 1").fill("Negative price")
        await dialog.get_by_role("button", name="+ Add a note").click()
        await dialog.get_by_role("textbox", name="Note 2").fill("Total is wrong")
        await dialog.get_by_label("Describe the problem").fill("The vase costs -12.50")
        await dialog.get_by_label("Your email").fill("jane@example.com")
        await dialog.get_by_role("button", name="Send report").click()
        await dialog.get_by_text("Thank you!").wait_for()

        folders: list[Path] = []
        for _ in range(300):  # the worker pushes within moments; bounded wait
            folders = [f for f in php.output.iterdir() if (f / "information.txt").exists()]
            if folders:
                break
            await asyncio.sleep(0.05)
        [folder] = folders
        info = (folder / "information.txt").read_text()
        assert "[sendercomment] => The vase costs -12.50" in info
        assert "[senderemail] => jane@example.com" in info
        assert "[subject] => Bug report: The vase costs -12.50" in info
        assert "[0] => Negative price" in info and "[1] => Total is wrong" in info
        assert f"[referer] => {page_server.url}/" in info

        auth = {"Authorization": f"Bearer {project.secret_key}"}
        [listed] = (await client.get("/api/v1/reports", headers=auth)).json()["reports"]
        assert f"[reportid] => {listed['reportid']}" in info
        stored = await client.get(f"/api/v1/reports/{listed['reportid']}/screenshot", headers=auth)
        pushed = folder / "screenshot.png"
        assert pushed.read_bytes() == stored.content  # the annotated PNG, byte for byte
        assert stored.content.startswith(b"\x89PNG\r\n\x1a\n")
