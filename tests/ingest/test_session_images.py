"""``/v1/{ios,android,mobile}/images``: hash-verified, content-addressed, de-duplicated."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, create_project
from fieldreport.storage.schema.sessions import session_images
from tests.support.images import png_bytes
from tests.support.sessions import bearer, start


async def _token(client: httpx.AsyncClient, project_id: int, platform: str = "ios") -> str:
    resp = await start(client, platform, {"projectID": project_id, "trackerVersion": "1"})
    assert resp.status_code == 200
    return str(resp.json()["token"])


def _files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, data, "image/png")) for name, data in images]


async def _keys(state: AppState) -> list[str]:
    return [k async for k in state.blobs.list("session-images")]


async def test_images_are_content_addressed_and_deduplicated(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    a, b = png_bytes(), b"\x89PNG other image bytes"
    a_md5 = hashlib.md5(a, usedforsecurity=False).hexdigest()
    b_sha = hashlib.sha256(b).hexdigest()
    token = await _token(client, pid)
    first = await client.post(
        "/v1/ios/images",
        data={"projectID": str(pid)},
        files=_files((a_md5, a), (b_sha.upper(), b)),
        headers=bearer(token),
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 2, "known": 0}
    assert sorted(await _keys(state)) == sorted(
        [f"session-images/{pid}/{a_md5}", f"session-images/{pid}/{b_sha}"]
    )
    assert await state.blobs.get_bytes(f"session-images/{pid}/{b_sha}") == b

    for platform in ("android", "mobile"):  # another session uploads `a` again
        again = await client.post(
            f"/v1/{platform}/images",
            data={"projectID": str(pid)},
            files=_files((a_md5, a)),
            headers=bearer(await _token(client, pid, platform)),
        )
        assert again.json() == {"stored": 0, "known": 1}
    assert len(await _keys(state)) == 2
    async with state.db.read() as conn:
        counts = dict(
            (r[0], r[1])
            for r in await conn.execute(
                sa.select(session_images.c.hash, session_images.c.use_count)
            )
        )
    assert counts == {a_md5: 3, b_sha: 1}

    listed = (await start(client, "ios", {"projectID": pid, "trackerVersion": "1"})).json()
    assert listed["imagesHashList"] == [a_md5, b_sha]  # most used first

    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    other_start = await start(client, "ios", {"projectID": other.project.id, "trackerVersion": "1"})
    assert other_start.json()["imagesHashList"] == []  # per project

    got = await client.get(f"/api/v1/session-images/{a_md5}", headers=bearer(project.secret_key))
    assert got.status_code == 200 and got.content == a
    assert got.headers["content-type"] == "image/png"
    theirs = await client.get(f"/api/v1/session-images/{a_md5}", headers=bearer(other.secret_key))
    assert theirs.status_code == 404
    traversal = await client.get(
        "/api/v1/session-images/..%2F..%2Fetc%2Fpasswd", headers=bearer(project.secret_key)
    )
    assert traversal.status_code == 404


async def test_a_hash_that_does_not_match_is_refused(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    data = png_bytes()
    wrong = hashlib.sha256(b"something else").hexdigest()
    good = hashlib.sha256(data).hexdigest()
    resp = await client.post(
        "/v1/ios/images",
        data={"projectID": str(pid)},
        files=_files((good, data), (wrong, data)),
        headers=bearer(await _token(client, pid)),
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "hash_mismatch"
    assert await _keys(state) == []  # nothing of a refused request is kept


@pytest.mark.parametrize(
    "name",
    [
        "../../../etc/passwd",
        "..%2F..%2Fescape",
        "/tmp/abs",
        "a" * 31,
        "g" * 64,
        "0" * 63 + "/",
        "..",
        "",
        "d41d8cd98f00b204e9800998ecf8427e.png",
        "d41d8cd98f00b204e9800998ecf8427e\n",
    ],
)
async def test_filenames_are_never_paths(
    client: httpx.AsyncClient, state: AppState, project: NewProject, name: str
) -> None:
    pid = project.project.id
    resp = await client.post(
        "/v1/ios/images",
        data={"projectID": str(pid)},
        files=_files((name, b"")),
        headers=bearer(await _token(client, pid)),
    )
    assert resp.status_code == 400, resp.text
    assert await _keys(state) == []


async def test_images_need_the_sessions_token_and_project(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    pid = project.project.id
    data = b"img"
    name = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    no_token = await client.post(
        "/v1/ios/images", data={"projectID": str(pid)}, files=_files((name, data))
    )
    assert no_token.status_code == 401
    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    wrong_project = await client.post(
        "/v1/ios/images",
        data={"projectID": str(other.project.id)},
        files=_files((name, data)),
        headers=bearer(await _token(client, pid)),
    )
    assert wrong_project.status_code == 403
    missing = await client.post(
        "/v1/ios/images", files=_files((name, data)), headers=bearer(await _token(client, pid))
    )
    assert missing.status_code == 400
    web = await client.post(
        "/v1/web/images", data={"projectID": str(pid)}, files=_files((name, data))
    )
    assert web.status_code == 404
    assert await _keys(state) == []
