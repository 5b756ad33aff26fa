"""Report intake trusts a cached key lookup only until the write transaction checks it again:
a rotated key, a deleted project or a removed origin is refused at once, cached or not,
with the answer a fresh lookup gives, and nothing of the refused report is stored."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from fieldreport.ingest.report_keys import ProjectCache
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, delete_project, rotate_key, set_origins
from fieldreport.storage.schema.core import reports
from tests.support.images import png_bytes

URL = "/api/v1/reports"
APP = "https://app.example.com"


async def _stored(state: AppState) -> tuple[int, int]:
    async with state.db.read() as conn:
        rows = (await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar()
    blobs = [k async for k in state.blobs.list("reports")]
    return int(rows or 0), len(blobs)


async def _post(
    client: httpx.AsyncClient, key: str, *, origin: str | None = None, in_form: bool = False
) -> httpx.Response:
    headers = {} if in_form else {"X-Fieldreport-Key": key}
    if origin is not None:
        headers["Origin"] = origin
    data = {"subject": "cached?", **({"key": key} if in_form else {})}
    files = [("file", ("shot.png", png_bytes(), "image/png"))]
    return await client.post(URL, headers=headers, data=data, files=files)


async def test_rotated_key_is_refused_while_cached(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    for in_form in (False, True):
        assert (await _post(client, project.public_key, in_form=in_form)).status_code == 201
    before = await _stored(state)
    async with state.db.write() as conn:
        new_key = await rotate_key(conn, project.project.id, "public")

    for in_form in (False, True):  # the old key is still in the cache: the writer refuses it
        refused = await _post(client, project.public_key, in_form=in_form)
        assert refused.status_code == 401
        assert refused.json() == {"error": "unknown project key", "code": "unauthorized"}
        assert refused.headers["www-authenticate"] == "Bearer"
    assert await _stored(state) == before  # no row, and the files were removed again
    assert (await _post(client, new_key)).status_code == 201


async def test_deleted_project_is_refused_while_cached(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    assert (await _post(client, project.public_key)).status_code == 201
    async with state.db.write() as conn:
        await delete_project(conn, project.project.id)
    files = [k async for k in state.blobs.list("reports")]  # the deleted report's (for gc)
    refused = await _post(client, project.public_key)
    assert refused.status_code == 401
    assert refused.json()["error"] == "unknown project key"
    assert [k async for k in state.blobs.list("reports")] == files


async def test_removed_origin_is_refused_while_cached(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])
    ok = await _post(client, project.public_key, origin=APP)
    assert ok.status_code == 201
    assert ok.headers["access-control-allow-origin"] == APP
    before = await _stored(state)
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[], remove=[APP])

    for in_form in (False, True):
        refused = await _post(client, project.public_key, origin=APP, in_form=in_form)
        assert refused.status_code == 403
        assert refused.json()["code"] == "origin_not_allowed"
        assert f"project set acme --origin {APP}" in refused.json()["error"]
        assert "access-control-allow-origin" not in refused.headers  # as a fresh lookup
    assert await _stored(state) == before
    # Requests without an Origin (scripts, apps) are not concerned.
    assert (await _post(client, project.public_key)).status_code == 201


async def test_added_origin_is_allowed_at_once(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    """A cached entry never refuses: an origin it does not list is looked up afresh."""
    assert (await _post(client, project.public_key, origin=APP)).status_code == 403
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[APP], remove=[])
    assert (await _post(client, project.public_key, origin=APP)).status_code == 201
    async with state.db.write() as conn:
        await set_origins(conn, project.project.id, add=["*"], remove=[APP])
    assert (await _post(client, project.public_key, origin="https://x.example")).status_code == 201


def test_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = ProjectCache(ttl=60, size=2, clock=lambda: now[0])
    cache.put("a", "project a")  # type: ignore[arg-type]
    assert cache.get("a") == "project a"
    now[0] = 61
    assert cache.get("a") is None
    cache.put("a", "a")  # type: ignore[arg-type]
    cache.put("b", "b")  # type: ignore[arg-type]
    cache.put("c", "c")  # type: ignore[arg-type]  # full: everything older goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, "c")
    cache.forget("c")
    assert cache.get("c") is None
