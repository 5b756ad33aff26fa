"""Multipart report bodies as they stream in, over real HTTP (SQLite + local blobs): limits,
truncation, odd but valid clients, files spooled to disk; and a client that goes away."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from fieldreport.ingest.errors import HTTPProblem
from fieldreport.ingest.report_input import parse_multipart
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.ingest.test_files import _noise_png
from tests.support.images import png_bytes

URL = "/api/v1/reports"
B = "b0undary"
TYPE = {"Content-Type": f"multipart/form-data; boundary={B}"}


@pytest.fixture
def backend() -> str:
    return "sqlite+local"  # the parser does not depend on the backend


def _part(name: str, value: bytes, filename: str | None = None, ctype: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{B}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{B}--\r\n".encode()


async def _post(client: httpx.AsyncClient, project: NewProject, body: Any) -> httpx.Response:
    headers = {**TYPE, "X-Fieldreport-Key": project.public_key}
    return await client.post(URL, content=body, headers=headers)


async def _report(client: httpx.AsyncClient, project: NewProject, rid: str) -> Any:
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    return (await client.get(f"{URL}/{rid}", headers=auth)).json()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (_body(_part("subject", b"x"))[:-9], "ends before the closing boundary"),
        (_part("subject", b"x"), "ends before the closing boundary"),
        (b"", "ends before the closing boundary"),
        (b"no boundary anywhere", "ends before the closing boundary"),
        (b"xx--" + _body(_part("subject", b"x"))[2:], "in front of first boundary"),
        (_body(*[_part("attachment", b"a", "a.txt")] * 22), "Maximum number of files is 21"),
        (_body(*[_part("notelist[]", b"n")] * 521), "Maximum number of fields is 520"),
        (_body(_part("sendercomment", b"x" * (1024 * 1024 + 2))), "maximum size of 1024KB"),
        (
            f"--{B}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{B}--\r\n".encode(),
            '"name" must be provided',
        ),
        (f"--{B}\r\nX-Nothing: 1\r\n\r\nx\r\n--{B}--\r\n".encode(), "Content-Disposition"),
        (
            _body(_part("subject", b"x", ctype="text/plain; " + "a" * 5000)),
            "header length exceeded",
        ),
    ],
    ids=[
        "truncated",
        "no-closing",
        "empty",
        "garbage",
        "preamble-glued",
        "files",
        "fields",
        "field-size",
        "no-name",
        "no-disposition",
        "long-header",
    ],
)
async def test_malformed_bodies_are_400_and_store_nothing(
    client: httpx.AsyncClient, state: AppState, project: NewProject, body: bytes, needle: str
) -> None:
    resp = await _post(client, project, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "malformed_body"
    assert resp.json()["error"].startswith("malformed multipart body: ")
    assert needle in resp.json()["error"]
    assert [k async for k in state.blobs.list("reports")] == []


async def test_missing_boundary_is_400(client: httpx.AsyncClient, project: NewProject) -> None:
    resp = await client.post(
        URL,
        content=_body(_part("subject", b"x")),
        headers={"Content-Type": "multipart/form-data", "X-Fieldreport-Key": project.public_key},
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "malformed multipart body: Missing boundary in multipart."


async def test_odd_but_valid_clients(client: httpx.AsyncClient, project: NewProject) -> None:
    """A preamble, an epilogue, header case and extra headers, Latin-1 and UTF-8 filenames,
    a quoted boundary with a charset, parts split anywhere on the wire."""
    shot = png_bytes()
    body = (
        b"preamble to ignore\r\n"
        + _part("subject", "Grüße".encode())
        + f'--{B}\r\ncontent-disposition: form-data; name="notelist[]"\r\n'
        "X-Extra: 1\r\n\r\nfirst\r\n".encode()
        + _part("notelist[]", b"second")
        + _part("file", shot, "@", "image/png").replace(b'"@"', '"écran.png"'.encode("latin-1"))
        + _part("attachment", b"\x00\x01", "журнал.bin", "application/octet-stream")
        + _part("attachment", b"two", "../x.txt")
        + f"--{B}--\r\nepilogue".encode()
    )

    async def in_pieces():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    resp = await client.post(
        URL,
        content=in_pieces(),
        headers={
            "Content-Type": f'multipart/form-data; charset=utf-8; boundary="{B}"',
            "X-Fieldreport-Key": project.public_key,
        },
    )
    assert resp.status_code == 201, resp.text
    got = await _report(client, project, resp.json()["reportid"])
    assert got["subject"] == "Grüße"
    assert got["notelist"] == ["first", "second"]
    assert got["screenshot"]["filename"] == "ecran.png"
    assert got["screenshot"]["sha256"] == hashlib.sha256(shot).hexdigest()
    assert [a["filename"] for a in got["attachments"]] == ["bin", "x.txt"]
    assert [a["size"] for a in got["attachments"]] == [2, 3]
    assert got["attachments"][0]["content_type"] == "application/octet-stream"


async def test_large_files_round_trip_through_the_disk_spool(
    client: httpx.AsyncClient, project: NewProject
) -> None:
    shot = _noise_png(700)  # > 1 MiB: spooled to disk, checked on a worker thread
    big = bytes(range(256)) * (3 * 4096 + 17)  # ~3 MiB, not chunk-aligned
    assert len(shot) > 1024 * 1024
    resp = await _post(
        client,
        project,
        _body(
            _part("file", shot, "s.png", "image/png"),
            _part("attachment", big, "big.bin"),
            _part("attachment", b"small", "small.txt", "text/plain"),
        ),
    )
    assert resp.status_code == 201, resp.text
    got = await _report(client, project, resp.json()["reportid"])
    assert got["screenshot"]["sha256"] == hashlib.sha256(shot).hexdigest()
    assert [a["sha256"] for a in got["attachments"]] == [
        hashlib.sha256(big).hexdigest(),
        hashlib.sha256(b"small").hexdigest(),
    ]


async def test_corrupt_large_png_is_refused(
    client: httpx.AsyncClient, state: AppState, project: NewProject
) -> None:
    shot = bytearray(_noise_png(700))
    shot[len(shot) // 2] ^= 1  # one bit in an IDAT chunk
    resp = await _post(client, project, _body(_part("file", bytes(shot), "s.png", "image/png")))
    assert resp.status_code == 400
    assert resp.json()["code"] == "not_an_image"
    assert [k async for k in state.blobs.list("reports")] == []


def _request(messages: list[dict[str, Any]]) -> Request:
    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": URL,
        "query_string": b"",
        "headers": [(b"content-type", TYPE["Content-Type"].encode())],
    }
    return Request(scope, receive)


def test_client_that_goes_away_is_a_400() -> None:
    big = _part("attachment", b"x" * (3 * 1024 * 1024), "a.bin")  # on disk by then
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": big, "more_body": True},
        {"type": "http.disconnect"},
    ]
    with pytest.raises(HTTPProblem) as caught:
        asyncio.run(parse_multipart(_request(messages), 20 * 1024 * 1024))
    assert caught.value.status == 400 and caught.value.code == "malformed_body"
    assert "disconnected" in caught.value.message


def test_body_past_the_limit_is_413_while_it_streams() -> None:
    limit = 1024 * 1024
    piece = b"\0" * 65536
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": _part("attachment", b"", "a.bin")[:-2], "more_body": True}
    ] + [{"type": "http.request", "body": piece, "more_body": True} for _ in range(100)]
    with pytest.raises(HTTPProblem) as caught:
        asyncio.run(parse_multipart(_request(messages), limit))
    assert caught.value.status == 413 and caught.value.code == "too_large"
    assert len(messages) == 100 - limit // len(piece)  # nothing read past the limit
