"""Behind https, the dashboard's cookies are Secure."""

from __future__ import annotations

import httpx
import pytest

from tests.dashboard.conftest import Accounts, csrf_of, log_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"public_url": "https://reports.example.com"}


@pytest.mark.parametrize("backend", ["sqlite+local"], indirect=True)
async def test_session_cookie_is_secure_behind_https(
    browser_client: httpx.AsyncClient, accounts: Accounts
) -> None:
    page = await browser_client.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    # A client does not send Secure cookies over plain http: hand it over as a browser would
    # over https.
    browser_client.cookies.set("fieldreport_login_csrf", csrf_of(page.text))
    resp = await log_in(browser_client, "member@example.com")
    assert resp.status_code == 303
    assert "; secure" in resp.headers["set-cookie"].lower()
