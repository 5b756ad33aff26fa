"""A browser sending its key as a form field (the widget: no preflight) can read why a report
was refused, when its origin is one a project allows; other origins learn nothing."""

from __future__ import annotations

import httpx

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, set_origins

APP = "https://app.example.com"


async def test_refusals_are_readable_from_allowed_origins(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])

    wrong_key = await client.post(
        "/api/v1/reports", data={"key": "frp_wrong", "subject": "x"}, headers={"Origin": APP}
    )
    assert wrong_key.status_code == 401
    assert wrong_key.headers["access-control-allow-origin"] == APP
    assert "key" in wrong_key.json()["error"]

    bad_email = await client.post(
        "/api/v1/reports",
        data={"key": project.public_key, "senderemail": "nope"},
        headers={"Origin": APP},
    )
    assert bad_email.status_code == 400
    assert bad_email.headers["access-control-allow-origin"] == APP

    stranger = await client.post(
        "/api/v1/reports",
        data={"key": "frp_wrong", "subject": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert stranger.status_code == 401
    assert "access-control-allow-origin" not in stranger.headers
