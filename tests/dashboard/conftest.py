"""Dashboard fixtures: accounts, a logged-in HTTP client, reports sent through the real API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from fieldreport.dashboard.passwords import hash_password
from fieldreport.state import AppState
from fieldreport.storage.accounts import User, add_member, create_user
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer

PASSWORD = "correct horse battery"


@dataclass
class Accounts:
    admin: User
    member: User
    outsider: User


@pytest.fixture
async def accounts(state: AppState, project: NewProject) -> Accounts:
    hashed = await hash_password(PASSWORD)
    async with state.db.write() as conn:
        admin = await create_user(conn, "admin@example.com", hashed, is_admin=True)
        member = await create_user(conn, "member@example.com", hashed)
        outsider = await create_user(conn, "outsider@example.com", hashed)
        await add_member(conn, project.project.id, member.id)
    return Accounts(admin, member, outsider)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = "/"
) -> httpx.Response:
    page = await client.get("/login", params={"next": next_path})
    return await client.post(
        "/login",
        params={"next": next_path},
        data={"email": email, "password": password, "csrf": csrf_of(page.text)},
    )


@pytest.fixture
async def browser_client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client that does not follow redirects (tests look at them)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


async def send_report(
    client: httpx.AsyncClient,
    project: NewProject,
    data: dict[str, str | list[str]],
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
    user_agent: str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
) -> dict[str, str]:
    """Send a report through the real intake API; returns its JSON answer."""
    resp = await client.post(
        "/api/v1/reports",
        headers={"X-Fieldreport-Key": project.public_key, "User-Agent": user_agent},
        data=data,
        files=files,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, str] = resp.json()
    return body
