"""Report intake over real HTTP, on SQLite + local blobs and PostgreSQL + S3."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject, set_origins
from fieldreport.storage.schema.core import report_files, reports
from tests.support.images import gif_bytes, jpeg_bytes, png_bytes, webp_bytes

URL = "/api/v1/reports"


async def _counts(state: AppState) -> tuple[int, int, int]:
    async with state.db.read() as conn:
        n_reports = (await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar()
        n_files = (
            await conn.execute(sa.select(sa.func.count()).select_from(report_files))
        ).scalar()
    blobs = [k async for k in state.blobs.list("reports")]
    return int(n_reports or 0), int(n_files or 0), len(blobs)


def _form(**extra: str) -> dict[str, str]:
    return {"subject": "Checkout broken", "sendercomment": "The button does nothing", **extra}


async def test_multipart_report_roundtrip(client: httpx.AsyncClient, project: NewProject) -> None:
    shot = png_bytes()
    resp = await client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key, "User-Agent": "Mozilla/5.0 Test"},
        data={
            **_form(senderemail="Jane@Example.com", additionalinfo='{"plan": "pro"}'),
            "notelist[]": ["first note", "second note"],
            "referer": "https://app.example/cart",
            "recording": "4f1c7a2e-1111-4222-8333-944455556666",
        },
        files=[
            ("file", ("../../etc/passwd.png", shot, "application/octet-stream")),
            ("attachment", ("log.txt", b"line1\nline2\n", "text/plain")),
        ],
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["ticketnr"] == 1
    assert body["ticketurl"] == f"http://fieldreport.test/reports/{body['reportid']}"
    assert resp.headers["location"] == f"/api/v1/reports/{body['reportid']}"

    auth = {"Authorization": f"Bearer {project.secret_key}"}
    got = (await client.get(f"{URL}/{body['reportid']}", headers=auth)).json()
    assert got["subject"] == "Checkout broken"
    assert got["notelist"] == ["first note", "second note"]
    assert got["senderemail"] == "Jane@example.com"
    assert got["browser"] == "Mozilla/5.0 Test"
    assert got["ipaddress"] == "127.0.0.1"
    assert got["referer"] == "https://app.example/cart"
    assert got["recording"] == "4f1c7a2e-1111-4222-8333-944455556666"
    assert got["screenshot"]["content_type"] == "image/png"
    assert got["screenshot"]["filename"] == "passwd.png"  # no directories from the client
    assert got["screenshot"]["sha256"] == hashlib.sha256(shot).hexdigest()
    assert got["attachments"][0]["filename"] == "log.txt"

    download = await client.get(got["screenshot"]["url"], headers=auth)
    assert download.status_code == 200 and download.content == shot
    attachment = await client.get(got["attachments"][0]["url"], headers=auth)
    assert attachment.content == b"line1\nline2\n"

    second = await client.post(URL, data={"key": project.public_key, "subject": "again"})
    assert second.status_code == 201 and second.json()["ticketnr"] == 2


@pytest.mark.parametrize("maker", [jpeg_bytes, webp_bytes])
async def test_jpeg_and_webp_accepted(
    client: httpx.AsyncClient, project: NewProject, maker: object
) -> None:
    data = maker()  # type: ignore[operator]
    resp = await client.post(
        URL, data={"key": project.public_key}, files={"file": ("x.png", data, "image/png")}
    )
    assert resp.status_code == 201, resp.text


async def test_json_report_with_data_url(client: httpx.AsyncClient, project: NewProject) -> None:
    shot = png_bytes()
    payload = {
        "subject": "From JSON",
        "notelist": ["a", "b"],
        "additionalinfo": {"build": 42},
        "file": "data:image/png;base64," + base64.b64encode(shot).decode(),
        "attachments": [
            {
                "filename": "a.txt",
                "content_type": "text/plain",
                "data": base64.b64encode(b"hi").decode(),
            }
        ],
    }
    resp = await client.post(URL, json=payload, headers={"X-Fieldreport-Key": project.public_key})
    assert resp.status_code == 201, resp.text
    got = (
        await client.get(
            f"{URL}/{resp.json()['reportid']}",
            headers={"Authorization": f"Bearer {project.secret_key}"},
        )
    ).json()
    assert got["notelist"] == ["a", "b"]
    assert json.loads(got["additionalinfo"]) == {"build": 42}
    assert got["screenshot"]["size"] == len(shot)


def _corrupt_png() -> bytes:
    png = bytearray(png_bytes())
    png[-20] ^= 1  # in the last IDAT chunk: its CRC no longer matches
    return bytes(png)


def _corrupt_png_b64() -> str:
    return base64.b64encode(_corrupt_png()).decode()


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"data": {"subject": "x"}}, 401, "missing project key"),
        ({"data": {"key": "frpub_wrong"}}, 401, "unknown project key"),
        ({"data": {"key": "@", "senderemail": "not-an-email"}}, 400, "senderemail"),
        (
            {"data": {"key": "@"}, "files": {"file": ("a.png", b"GIF89a not png", "image/png")}},
            400,
            "PNG, JPEG or WebP",
        ),
        (
            {"data": {"key": "@"}, "files": {"file": ("a.gif", gif_bytes(), "image/gif")}},
            400,
            "GIF",
        ),
        (  # checked where the blob store writes it: refused there, nothing stored
            {"data": {"key": "@"}, "files": {"file": ("a.png", _corrupt_png(), "image/png")}},
            400,
            "PNG, JPEG or WebP",
        ),
        (
            {"json": {"file": "data:image/png;base64," + _corrupt_png_b64()}},
            400,
            "PNG, JPEG or WebP",
        ),
        (
            {"data": {"key": "@"}, "files": {"other": ("a.png", png_bytes(), "image/png")}},
            400,
            "unknown file field `other`",
        ),
        ({"data": {"key": "@", "nonsense": "1"}}, 400, "unknown field `nonsense`"),
        ({"data": {"key": "@", "recording": "../../x"}}, 400, "recording"),
        (
            {"content": b"plain", "headers": {"Content-Type": "text/plain"}},
            415,
            "multipart/form-data",
        ),
        (
            {
                "content": b"--x\r\nbroken",
                "headers": {"Content-Type": "multipart/form-data; boundary=x"},
            },
            400,
            "",
        ),
        (
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ({"json": {"file": "data:image/png;base64,@@@"}}, 400, "base64"),
        ({"json": {"subject": 5}}, 400, "`subject` must be a string"),
    ],
)
async def test_bad_input_leaves_nothing(
    client: httpx.AsyncClient,
    server: object,
    state: AppState,
    project: NewProject,
    kwargs: dict[str, object],
    status: int,
    needle: str,
) -> None:
    kwargs = dict(kwargs)  # parameters are shared between the backend variants
    data = kwargs.get("data")
    if isinstance(data, dict):
        kwargs["data"] = {k: project.public_key if v == "@" else v for k, v in data.items()}
    headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
    if "data" not in kwargs:  # raw bodies authenticate by header
        headers["X-Fieldreport-Key"] = project.public_key
    resp = await client.post(URL, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert resp.status_code == status, resp.text
    assert needle in resp.json()["error"]
    assert resp.json()["code"]
    assert await _counts(state) == (0, 0, 0)


async def test_too_large_is_413_and_stores_nothing(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    big = b"\0" * (state.settings.max_report_bytes + 1024)
    resp = await client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key},
        files={"attachment": ("big.bin", big, "application/octet-stream")},
    )
    assert resp.status_code == 413
    assert await _counts(state) == (0, 0, 0)


async def test_too_large_chunked_body_is_413(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    limit = state.settings.max_report_bytes
    boundary = "b0undary"

    async def body():  # type: ignore[no-untyped-def]
        head = 'Content-Disposition: form-data; name="attachment"; filename="a"'
        yield f"--{boundary}\r\n{head}\r\n\r\n".encode()
        sent = 0
        while sent <= limit:
            yield b"\0" * 65536
            sent += 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = await client.post(
        URL,
        headers={
            "X-Fieldreport-Key": project.public_key,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        content=body(),
    )
    assert resp.status_code == 413
    assert await _counts(state) == (0, 0, 0)


async def test_secret_key_of_other_project_sees_nothing(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    from fieldreport.storage.projects import create_project

    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    created = await client.post(URL, data={"key": project.public_key, "subject": "mine"})
    rid = created.json()["reportid"]
    other_auth = {"Authorization": f"Bearer {other.secret_key}"}
    assert (await client.get(f"{URL}/{rid}", headers=other_auth)).status_code == 404
    assert (await client.get(f"{URL}/{rid}/screenshot", headers=other_auth)).status_code == 404
    listing = await client.get(URL, headers=other_auth)
    assert listing.json()["reports"] == []
    assert (
        await client.get(URL, params={"project": "acme"}, headers=other_auth)
    ).status_code == 403
    assert (await client.get(f"{URL}/{rid}")).status_code == 401
    # the public key is not a secret key
    assert (
        await client.get(URL, headers={"Authorization": f"Bearer {project.public_key}"})
    ).status_code == 401
    mine = await client.get(
        URL, params={"project": "acme"}, headers={"Authorization": f"Bearer {project.secret_key}"}
    )
    assert [r["reportid"] for r in mine.json()["reports"]] == [rid]


async def test_listing_pages(client: httpx.AsyncClient, project: NewProject) -> None:
    for i in range(5):
        r = await client.post(URL, data={"key": project.public_key, "subject": f"r{i}"})
        assert r.status_code == 201
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    page1 = (await client.get(URL, params={"limit": 2}, headers=auth)).json()
    assert [r["ticketnr"] for r in page1["reports"]] == [5, 4]
    page2 = (
        await client.get(URL, params={"limit": 2, "before": page1["next_before"]}, headers=auth)
    ).json()
    assert [r["ticketnr"] for r in page2["reports"]] == [3, 2]
    assert (await client.get(URL, params={"limit": "x"}, headers=auth)).status_code == 400


async def test_cors_origins(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    async with state.db.write() as conn:
        await set_origins(conn, 1, add=["https://app.example"], remove=[])
    pre = await client.options(
        URL,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-fieldreport-key",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    bad_pre = await client.options(
        URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert bad_pre.status_code == 403
    ok = await client.post(
        URL, data={"key": project.public_key}, headers={"Origin": "https://app.example"}
    )
    assert ok.status_code == 201
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    evil = await client.post(
        URL, data={"key": project.public_key}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert "project set acme --origin https://evil.example" in evil.json()["error"]
    assert "access-control-allow-origin" not in evil.headers


async def test_client_ip_from_trusted_proxy_only(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    resp = await client.post(
        URL, data={"key": project.public_key}, headers={"X-Forwarded-For": "203.0.113.9"}
    )
    got = (
        await client.get(
            f"{URL}/{resp.json()['reportid']}",
            headers={"Authorization": f"Bearer {project.secret_key}"},
        )
    ).json()
    assert got["ipaddress"] == "127.0.0.1"  # no trusted proxies configured


async def test_concurrent_reports_share_commits_and_all_get_distinct_tickets(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    import asyncio

    shot = png_bytes()

    async def post(i: int) -> httpx.Response:
        return await client.post(
            URL,
            data={"key": project.public_key, "subject": f"c{i}"},
            files={"file": ("s.png", shot, "image/png")},
        )

    responses = await asyncio.gather(*(post(i) for i in range(40)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["ticketnr"] for r in responses) == list(range(1, 41))
    assert await _counts(state) == (40, 40, 40)
