"""Shared steps for delivery tests: destinations, reports through the real intake, a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from fieldreport.delivery.policy import DEFAULT_SCHEDULE
from fieldreport.state import AppState
from fieldreport.storage.deliveries import Delivery, attempts_of, get_delivery, list_deliveries
from fieldreport.storage.destinations import Destination, NewDestination, add_destination
from fieldreport.storage.projects import NewProject
from tests.support.images import png_bytes


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def sync(self) -> None:
        """Catch up with real time (after reports were accepted at real time)."""
        self.now = max(self.now, datetime.now(UTC))

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def add_dest(
    state: AppState, project: NewProject, url: str, *, backup: bool = False, **kw: Any
) -> Destination:
    kw.setdefault("format", "multipart")
    kw.setdefault("retry_schedule", list(DEFAULT_SCHEDULE))
    kw.setdefault("timeout", 5.0)
    async with state.db.write() as conn:
        return await add_destination(
            conn, project.project.id, NewDestination(url=url, **kw), backup=backup
        )


async def submit(
    client: httpx.AsyncClient, project: NewProject, *, subject: str = "Checkout broken"
) -> str:
    resp = await client.post(
        "/api/v1/reports",
        headers={"X-Fieldreport-Key": project.public_key, "User-Agent": "Mozilla/5.0 Test"},
        data={
            "subject": subject,
            "sendercomment": "Nothing happens when I click <Pay> & wait",
            "senderemail": "user@example.com",
            "additionalinfo": '{"plan": "pro"}',
            "referer": "https://app.example.com/checkout",
            "notelist[]": ["first note", "second note: ünïcode ✓"],
        },
        files={"file": ("../../etc/Screen shot.png", png_bytes(200, 120), "image/png")},
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["reportid"])


async def only_delivery(state: AppState) -> Delivery:
    async with state.db.read() as conn:
        found = await list_deliveries(conn)
    assert len(found) == 1
    return found[0]


async def reload(state: AppState, delivery_id: int) -> Delivery:
    async with state.db.read() as conn:
        found = await get_delivery(conn, delivery_id)
    assert found is not None
    return found


async def attempts(state: AppState, delivery_id: int) -> list[Any]:
    async with state.db.read() as conn:
        return await attempts_of(conn, delivery_id)
