"""The listings' query parameters: one rule for every listing, a 400 that says what was wrong."""

from __future__ import annotations

import httpx
import pytest

from fieldreport.storage.projects import NewProject

LISTINGS = {
    "reports": ("/api/v1/reports", 500),
    "sessions": ("/api/v1/sessions", 500),
    "deliveries": ("/api/v1/deliveries", 1000),
    "backend events": ("/api/v1/sessions/rec-1/backend-events", 5000),
}


def _auth(project: NewProject) -> dict[str, str]:
    return {"Authorization": f"Bearer {project.secret_key}"}


@pytest.mark.parametrize("listing", LISTINGS)
async def test_limit_out_of_range_or_not_a_number_is_a_400_naming_it(
    client: httpx.AsyncClient, project: NewProject, listing: str
) -> None:
    path, maximum = LISTINGS[listing]
    for bad, shown in (("0", "0"), (str(maximum + 1), str(maximum + 1)), ("ten", "'ten'")):
        answer = await client.get(f"{path}?limit={bad}", headers=_auth(project))
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error"] == (
            f"`limit` must be a whole number from 1 to {maximum}, got {shown}"
        )
    for good in ("1", str(maximum), ""):  # empty means "the default"
        answer = await client.get(f"{path}?limit={good}", headers=_auth(project))
        assert answer.status_code in (200, 404), (good, answer.text)  # 404: no such recording


async def test_report_paging_bound_must_be_positive(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    for bad, shown in (("0", "0"), ("-3", "-3"), ("1.5", "'1.5'")):
        answer = await client.get(f"/api/v1/reports?before={bad}", headers=_auth(project))
        assert answer.status_code == 400
        assert answer.json()["error"] == f"`before` must be a whole number, at least 1, got {shown}"
    huge = await client.get(f"/api/v1/reports?before={10**30}", headers=_auth(project))
    assert huge.status_code == 200 and huge.json() == {"reports": [], "next_before": None}


async def test_session_paging_bound_must_be_a_time(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    answer = await client.get("/api/v1/sessions?before=yesterday", headers=_auth(project))
    assert answer.status_code == 400
    assert answer.json()["error"] == "`before` must be an ISO 8601 time, got 'yesterday'"


async def test_backend_event_bounds(client: httpx.AsyncClient, project: NewProject) -> None:
    path = LISTINGS["backend events"][0]
    for query, detail in (
        ("since=soon", "`since` must be a whole number, got 'soon'"),
        ("until=1e3", "`until` must be a whole number, got '1e3'"),
        ("offset=-1", "`offset` must be a whole number, at least 0, got -1"),
    ):
        answer = await client.get(f"{path}?{query}", headers=_auth(project))
        assert answer.status_code == 400 and answer.json()["error"] == detail, query
    # Past the database's BIGINT range: clamped, so the query runs (no recording: 404).
    far = await client.get(f"{path}?since=-{10**30}&until={10**30}", headers=_auth(project))
    assert far.status_code == 404, far.text
