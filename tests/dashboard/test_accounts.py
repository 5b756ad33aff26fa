"""Logging in and out, CSRF, rate limits, one-time passwords and who sees what."""

from __future__ import annotations

import httpx
import pytest

from fieldreport.dashboard.passwords import hash_password
from fieldreport.state import AppState
from fieldreport.storage.accounts import create_user
from fieldreport.storage.projects import NewProject
from tests.dashboard.conftest import PASSWORD, Accounts, csrf_of, log_in, send_report


async def test_report_link_requires_login_and_comes_back(
    browser_client: httpx.AsyncClient, project: NewProject, accounts: Accounts
) -> None:
    sent = await send_report(browser_client, project, {"subject": "Checkout broken"})
    path = f"/reports/{sent['reportid']}"
    assert sent["ticketurl"].endswith(path)

    resp = await browser_client.get(path)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/login?next=%2Freports%2F{sent['reportid']}"

    resp = await log_in(browser_client, "Member@Example.com", next_path=path)
    assert resp.status_code == 303
    assert resp.headers["location"] == path
    cookie = resp.headers["set-cookie"].lower()
    assert "fieldreport_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # the test server's public URL is http

    page = await browser_client.get(path)
    assert page.status_code == 200
    assert "Checkout broken" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"


async def test_wrong_password_and_unknown_user_look_alike(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    wrong = await log_in(browser_client, "member@example.com", "not the password")
    unknown = await log_in(browser_client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert "fieldreport_session" not in wrong.headers.get("set-cookie", "")


async def test_failed_logins_are_rate_limited_per_account(
    browser_client: httpx.AsyncClient, accounts: Accounts, state: AppState
) -> None:
    limit = state.settings.login_max_failures
    for _ in range(limit):
        assert (await log_in(browser_client, "member@example.com", "guess")).status_code == 401
    blocked = await log_in(browser_client, "member@example.com", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed logins" in blocked.text
    # Another account from the same address is not locked out by these failures.
    assert (await log_in(browser_client, "admin@example.com")).status_code == 303


async def test_login_form_needs_its_csrf_cookie(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    resp = await browser_client.post(
        "/login", data={"email": "member@example.com", "password": PASSWORD, "csrf": "forged"}
    )
    assert resp.status_code == 403
    assert "fieldreport_session" not in resp.headers.get("set-cookie", "")


async def test_posts_without_the_session_csrf_token_are_refused(
    browser_client: httpx.AsyncClient, accounts: Accounts, project: NewProject
) -> None:
    await log_in(browser_client, "admin@example.com")
    url = f"/projects/{project.project.id}/origins"
    resp = await browser_client.post(url, data={"add": "https://evil.example"})
    assert resp.status_code == 403
    resp = await browser_client.post(url, data={"add": "https://evil.example", "csrf": "x" * 43})
    assert resp.status_code == 403
    settings = await browser_client.get(f"/projects/{project.project.id}/settings")
    assert "evil.example" not in settings.text


async def test_logout_ends_the_session_for_good(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    await log_in(browser_client, "member@example.com")
    token = browser_client.cookies["fieldreport_session"]
    home = await browser_client.get("/")
    assert home.status_code == 200
    resp = await browser_client.post("/logout", data={"csrf": csrf_of(home.text)})
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login"
    # Replaying the old cookie does not work: the session row is gone.
    browser_client.cookies.set("fieldreport_session", token)
    assert (await browser_client.get("/")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil"])
async def test_login_never_redirects_off_site(
    browser_client: httpx.AsyncClient, accounts: Accounts, target: str
) -> None:
    resp = await log_in(browser_client, "member@example.com", next_path=target)
    assert resp.headers["location"] == "/"


async def test_one_time_password_must_be_changed(
    browser_client: httpx.AsyncClient, state: AppState
) -> None:
    async with state.db.write() as conn:
        await create_user(
            conn,
            "new@example.com",
            await hash_password("one-time-pw-123"),
            must_change_password=True,
        )
    resp = await log_in(browser_client, "new@example.com", "one-time-pw-123")
    assert resp.headers["location"] == "/account/password"
    assert (await browser_client.get("/")).headers["location"] == "/account/password"
    form = await browser_client.get("/account/password")
    assert "one-time password" in form.text
    csrf = csrf_of(form.text)
    short = await browser_client.post(
        "/account/password",
        data={"csrf": csrf, "current": "one-time-pw-123", "new": "short", "repeat": "short"},
    )
    assert short.status_code == 400
    new = "my own good password"
    done = await browser_client.post(
        "/account/password",
        data={"csrf": csrf, "current": "one-time-pw-123", "new": new, "repeat": new},
    )
    assert done.headers["location"] == "/?notice=password"
    assert (await browser_client.get("/")).status_code == 200

    async with httpx.AsyncClient(base_url=str(browser_client.base_url)) as other:
        assert (await log_in(other, "new@example.com", "one-time-pw-123")).status_code == 401
        assert (await log_in(other, "new@example.com", new)).status_code == 303


async def test_members_see_their_projects_only(
    browser_client: httpx.AsyncClient, accounts: Accounts, project: NewProject
) -> None:
    sent = await send_report(browser_client, project, {"subject": "Members only"})
    pid = project.project.id

    await log_in(browser_client, "outsider@example.com")
    home = await browser_client.get("/")
    assert "acme" not in home.text
    assert "not a member of any project" in home.text
    assert (await browser_client.get(f"/reports/{sent['reportid']}")).status_code == 404
    assert (await browser_client.get(f"/reports/{sent['reportid']}/screenshot")).status_code == 404
    assert (await browser_client.get(f"/projects/{pid}/reports")).status_code == 404

    browser_client.cookies.clear()
    await log_in(browser_client, "member@example.com")
    home = await browser_client.get("/")
    assert f"/projects/{pid}/reports" in home.text
    assert f"/projects/{pid}/settings" not in home.text  # members do not manage projects
    assert (await browser_client.get(f"/projects/{pid}/settings")).status_code == 403
    listing = await browser_client.get(f"/projects/{pid}/reports")
    assert "Members only" in listing.text
