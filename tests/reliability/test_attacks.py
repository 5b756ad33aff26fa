"""One named test per known attack on the ingest and reading APIs (both backends).

Attacks already covered elsewhere are referenced, not repeated: ``tests/reliability/report.py``
lists them (REFERENCED) and the table in ``docs/reliability.md`` shows them all.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import httpx
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.blobs.keys import report_of_key
from fieldreport.storage.projects import NewProject, create_project
from fieldreport.storage.schema.core import report_files, reports
from tests.reliability.conftest import Record
from tests.support.images import png_bytes
from tests.support.recordings import start_session
from tests.support.sessions import FakeClock, bearer, start, stored_anything

URL = "/api/v1/reports"
BAD_ID = "ok; X-Injected=1 <x>"  # httpx itself refuses to send CR/LF in a header
TRAVERSALS = [
    "../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "/etc/shadow",
    "..%2F..%2Fescape.png",
    "....//....//x",
    "C:\\boot.ini",
    "\u2025\u2215evil",  # two-dot leader + division slash
]


async def _report_count(state: AppState) -> int:
    async with state.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar())


async def test_attack_path_traversal_in_report_filenames(
    client: httpx.AsyncClient, state: AppState, project: NewProject, tmp_path: Path, record: Record
) -> None:
    files = [("file", (TRAVERSALS[0] + ".png", png_bytes(), "image/png"))] + [
        ("attachment", (name, b"payload", "text/plain")) for name in TRAVERSALS
    ]
    resp = await client.post(
        URL, headers={"X-Fieldreport-Key": project.public_key}, data={"subject": "t"}, files=files
    )
    assert resp.status_code == 201, resp.text
    report_id = resp.json()["reportid"]
    async with state.db.read() as conn:
        rows = (await conn.execute(sa.select(report_files))).all()
    assert len(rows) == len(TRAVERSALS) + 1
    for row in rows:
        assert report_of_key(row.blob_key) == report_id and ".." not in row.blob_key
        assert row.blob_key.startswith(f"reports/{project.project.id}/")
        assert "/" not in row.filename and "\\" not in row.filename
        assert not row.filename.startswith(".") and row.filename.isascii()
    # Nothing landed outside the blob store: no file of those names anywhere in the test dir.
    leaked = [p for p in tmp_path.rglob("*") if p.name in ("passwd", "win.ini", "shadow", "x")]
    assert leaked == []
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    for n in range(1, len(TRAVERSALS) + 1):
        got = await client.get(f"{URL}/{report_id}/attachments/{n}", headers=auth)
        assert got.status_code == 200 and got.content == b"payload"
        name = got.headers["content-disposition"].split("filename=", 1)[1].strip('"')
        assert "/" not in name and "\\" not in name and not name.startswith(".")
    record(
        "attack",
        "path traversal in report file names (`../../etc/passwd`, backslashes, absolute, "
        "encoded, Unicode look-alikes)",
        "blob keys are ours (`reports/<project>/<yyyy-mm>/<report>.…`), display names sanitised, "
        "downloads carry safe Content-Disposition, nothing written outside the store",
    )


async def test_attack_header_injection_through_report_fields(
    client: httpx.AsyncClient, state: AppState, project: NewProject, record: Record
) -> None:
    hostile = "Broken\r\nX-Injected: 1\r\n\r\n<script>alert(1)</script>"
    resp = await client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key, "X-Request-ID": BAD_ID},
        data={"subject": hostile, "sendercomment": hostile, "referer": hostile},
    )
    assert resp.status_code == 201, resp.text
    assert "x-injected" not in resp.headers
    assert resp.headers["x-request-id"] != BAD_ID  # a bad request id is replaced
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    got = await client.get(f"{URL}/{resp.json()['reportid']}", headers=auth)
    assert "x-injected" not in got.headers
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["subject"] == hostile  # kept as data, exactly
    record(
        "attack",
        "header injection: CR/LF + headers in report fields and in X-Request-ID",
        "fields stay data (stored exactly, served as JSON); no header appears; a bad request "
        "id is replaced. Email: see test_email.py",
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(side: int = 100_000) -> bytes:
    """A valid-looking PNG header claiming side x side pixels (10 gigapixels), ~100 bytes."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + (_png_chunk(b"IEND", b""))
    )


async def test_attack_decompression_bomb_screenshot(
    client: httpx.AsyncClient, state: AppState, project: NewProject, record: Record
) -> None:
    resp = await client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key},
        files={"file": ("bomb.png", _bomb_png(), "image/png")},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "not_an_image"
    assert await _report_count(state) == 0
    assert [k async for k in state.blobs.list("reports")] == []
    record(
        "attack",
        "image decompression bomb: a 100-byte PNG declaring 100000 x 100000 pixels",
        "400 `not_an_image` before any decoding; nothing stored",
    )


async def test_attack_project_a_key_on_project_b_data(
    client: httpx.AsyncClient, state: AppState, project: NewProject, record: Record
) -> None:
    async with state.db.write() as conn:
        other = await create_project(conn, "other")
    b_report = await client.post(
        URL,
        headers={"X-Fieldreport-Key": other.public_key},
        data={"subject": "B's secret"},
        files={"attachment": ("b.txt", b"B only", "text/plain")},
    )
    assert b_report.status_code == 201
    b_id = b_report.json()["reportid"]
    a_auth = {"Authorization": f"Bearer {project.secret_key}"}
    assert (await client.get(f"{URL}/{b_id}", headers=a_auth)).status_code == 404
    assert (await client.get(f"{URL}/{b_id}/attachments/1", headers=a_auth)).status_code == 404
    listing = await client.get(URL, headers=a_auth)
    assert listing.status_code == 200 and listing.json()["reports"] == []
    # A's public key is not a secret key, on its own project's data either.
    pub = {"Authorization": f"Bearer {project.public_key}"}
    assert (await client.get(URL, headers=pub)).status_code == 401
    # A session started with A's key cannot push images into B.
    a_start = await start(client, "ios", {"projectKey": project.public_key, "trackerVersion": "1"})
    images = await client.post(
        "/v1/ios/images",
        data={"projectID": str(other.project.id)},
        files=[("file", ("d41d8cd98f00b204e9800998ecf8427e", b"", "image/png"))],
        headers=bearer(a_start.json()["token"]),
    )
    assert images.status_code == 403, images.text
    assert [k async for k in state.blobs.list("session-images")] == []
    record(
        "attack",
        "project A's keys on project B's data: A's secret key on B's report, attachment and "
        "listing; A's public key as a secret key; A's session token pushing images into B",
        "404 / empty listing / 401 / 403; nothing of B is shown, nothing is written into B. "
        "Session reading API: test_sessions_mobile.py::test_reading_api_is_per_project",
    )


async def test_attack_replayed_expired_session_token(
    client: httpx.AsyncClient, state: AppState, project: NewProject, record: Record
) -> None:
    clock = FakeClock()
    state.clock = clock
    body = (
        await start(client, "ios", {"projectID": project.project.id, "trackerVersion": "1"})
    ).json()
    auth = bearer(body["token"])
    assert (await client.post("/v1/ios/append", content=b"a", headers=auth)).status_code == 200
    clock.advance(2 * 3600 + 24 * 3600 + 1)  # past the session's end and the late grace
    replays = [
        await client.post("/v1/ios/append", content=b"b", headers=auth),
        await client.post("/v1/ios/late", content=b"c", headers=auth),
        await client.post(
            "/v1/ios/images",
            data={"projectID": str(project.project.id)},
            files=[("file", ("d41d8cd98f00b204e9800998ecf8427e", b"", "image/png"))],
            headers=auth,
        ),
    ]
    for resp in replays:
        assert resp.status_code == 401, resp.text
        assert "expired" in resp.json()["error"]
    tampered = body["token"][:-2] + ("AA" if not body["token"].endswith("AA") else "BB")
    resp = await client.post("/v1/ios/append", content=b"d", headers=bearer(tampered))
    assert resp.status_code == 401
    # Only the batch sent while the token was valid (small: stored in its row, no blob).
    assert await stored_anything(state) == (1, 0)
    record(
        "attack",
        "a session token replayed after expiry and late grace (append, late, images), and "
        "one with a tampered signature",
        "401 for each, nothing stored. Grace boundaries: "
        "test_sessions_mobile.py::test_expiry_and_late_grace_follow_the_clock",
    )


async def test_attack_project_id_past_the_integer_range(
    client: httpx.AsyncClient, project: NewProject, record: Record
) -> None:
    for value in (2**31, 2**40, 2**64, "9" * 40, str(2**35), -1, 0):
        resp = await start(client, "ios", {"projectID": value, "trackerVersion": "1"})
        assert resp.status_code in (400, 404), resp.text
    record(
        "attack",
        "session start with projectID past the INTEGER range (2^31 … 10^40; found by "
        "schemathesis: it was a 500)",
        "404 unknown project",
    )


async def test_query_integers_past_the_integer_range(
    client: httpx.AsyncClient, state: AppState, project: NewProject, record: Record
) -> None:
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    huge = str(10**22)
    resp = await client.get(URL, params={"before": huge}, headers=auth)
    assert resp.status_code == 200, resp.text
    recording = await start_session(state, project.project.id)
    for name in ("since", "until", "offset"):
        for value in (huge, "-" + huge):
            resp = await client.get(
                f"/api/v1/sessions/{recording}/backend-events", params={name: value}, headers=auth
            )
            assert resp.status_code in (200, 400), (name, value, resp.text)
    record(
        "input",
        "query integers past the column ranges (`before`, `since`, `until`, `offset` = "
        "±10^22; found by schemathesis: `before` was a 500)",
        "clamped to the column's range: an ordinary answer",
    )
