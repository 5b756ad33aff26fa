"""Project management by administrators: create, rotate keys, origins, members."""

from __future__ import annotations

import re

import httpx

from fieldreport.storage.projects import NewProject
from tests.dashboard.conftest import Accounts, csrf_of, log_in, send_report


async def test_admin_creates_a_project_and_sees_its_keys_once(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    await log_in(browser_client, "admin@example.com")
    form = await browser_client.get("/projects/new")
    resp = await browser_client.post(
        "/projects", data={"csrf": csrf_of(form.text), "name": "billing"}
    )
    assert resp.status_code == 201
    public = re.search(r"(frpub_[\w-]+)", resp.text)
    assert public
    ok = await browser_client.post(
        "/api/v1/reports", headers={"X-Fieldreport-Key": public.group(1)}, data={"subject": "hi"}
    )
    assert ok.status_code == 201
    again = await browser_client.post(
        "/projects", data={"csrf": csrf_of(form.text), "name": "billing"}
    )
    assert again.status_code == 409
    home = await browser_client.get("/")
    assert "billing" in home.text and "frpub_" not in home.text


async def test_members_cannot_create_projects(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    await log_in(browser_client, "member@example.com")
    home = await browser_client.get("/")
    resp = await browser_client.post("/projects", data={"csrf": csrf_of(home.text), "name": "x"})
    assert resp.status_code == 403


async def test_rotating_a_key_shows_the_new_one_and_retires_the_old(
    browser_client: httpx.AsyncClient, accounts: Accounts, project: NewProject
) -> None:
    await log_in(browser_client, "admin@example.com")
    url = f"/projects/{project.project.id}/settings"
    page = await browser_client.get(url)
    resp = await browser_client.post(
        f"/projects/{project.project.id}/keys", data={"csrf": csrf_of(page.text), "kind": "public"}
    )
    assert resp.status_code == 200
    new_key = re.search(r'id="new-key">(frpub_[\w-]+)<', resp.text)
    assert new_key and new_key.group(1) != project.public_key
    old = await browser_client.post(
        "/api/v1/reports", headers={"X-Fieldreport-Key": project.public_key}, data={"subject": "a"}
    )
    assert old.status_code == 401
    new = await browser_client.post(
        "/api/v1/reports", headers={"X-Fieldreport-Key": new_key.group(1)}, data={"subject": "a"}
    )
    assert new.status_code == 201
    # Reloading the settings does not show it again.
    assert new_key.group(1) not in (await browser_client.get(url)).text


async def test_origins_and_members(
    browser_client: httpx.AsyncClient, accounts: Accounts, project: NewProject
) -> None:
    await log_in(browser_client, "admin@example.com")
    pid = project.project.id
    page = await browser_client.get(f"/projects/{pid}/settings")
    csrf = csrf_of(page.text)

    added = await browser_client.post(
        f"/projects/{pid}/origins", data={"csrf": csrf, "add": "HTTPS://App.Example:443/"}
    )
    assert added.headers["location"] == f"/projects/{pid}/settings?notice=origin-added"
    page = await browser_client.get(added.headers["location"])
    assert "<code>https://app.example</code>" in page.text
    assert "The origin is now allowed." in page.text
    bad = await browser_client.post(
        f"/projects/{pid}/origins", data={"csrf": csrf, "add": "https://app.example/path"}
    )
    assert bad.status_code == 400 and "no path" in bad.text
    await browser_client.post(
        f"/projects/{pid}/origins", data={"csrf": csrf, "remove": "https://app.example"}
    )
    assert (
        "<code>https://app.example</code>"
        not in (await browser_client.get(f"/projects/{pid}/settings")).text
    )

    # The outsider becomes a member, then sees the project's reports; removed, they do not.
    sent = await send_report(browser_client, project, {"subject": "for the outsider"})
    resp = await browser_client.post(
        f"/projects/{pid}/members", data={"csrf": csrf, "add": "outsider@example.com"}
    )
    assert resp.status_code == 303
    unknown = await browser_client.post(
        f"/projects/{pid}/members", data={"csrf": csrf, "add": "ghost@example.com"}
    )
    assert unknown.status_code == 400 and "fieldreport user create" in unknown.text

    async with httpx.AsyncClient(base_url=str(browser_client.base_url)) as outsider:
        await log_in(outsider, "outsider@example.com")
        assert (await outsider.get(f"/reports/{sent['reportid']}")).status_code == 200
        await browser_client.post(
            f"/projects/{pid}/members", data={"csrf": csrf, "remove": str(accounts.outsider.id)}
        )
        assert (await outsider.get(f"/reports/{sent['reportid']}")).status_code == 404
