"""The server as a real process: first start, durability across SIGKILL, graceful
shutdown on SIGTERM, and bounded memory for large uploads."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port
from tests.support.images import png_bytes
from tests.support.proc import fieldreport_cmd, subprocess_env
from tests.support.server_proc import ServerProcess

MiB = 1024 * 1024


def create_project(data_dir: Path, name: str = "acme") -> dict[str, str]:
    out = subprocess.run(
        fieldreport_cmd("project", "create", name, "--json", "--data-dir", str(data_dir)),
        env=subprocess_env(),
        capture_output=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def running(data_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, free_port())
    yield server
    server.stop()


def test_first_start_creates_database_and_says_what_to_do(running: ServerProcess) -> None:
    running.start()
    assert (running.data_dir / "fieldreport.db").exists()
    assert "fieldreport project create" in running.output()
    docs = httpx.get(f"{running.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(f"{running.url}/openapi.json").json()
    assert "/api/v1/reports" in spec["paths"]


def test_every_acknowledged_report_survives_sigkill(running: ServerProcess) -> None:
    keys = create_project(running.data_dir)
    running.start()
    acknowledged: dict[str, str] = {}
    stop = threading.Event()
    shot = png_bytes()

    def post_until_killed(worker: int) -> None:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            for i in range(400):  # bounded
                if stop.is_set():
                    return
                subject = f"w{worker}-{i}"
                try:
                    resp = client.post(
                        "/api/v1/reports",
                        data={"key": keys["public_key"], "subject": subject},
                        files={"file": ("s.png", shot, "image/png")},
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if resp.status_code == 201:
                    acknowledged[resp.json()["reportid"]] = subject

    threads = [threading.Thread(target=post_until_killed, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    running.kill()  # SIGKILL while requests are in flight
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acknowledged) >= 20

    running.start()
    auth = {"Authorization": f"Bearer {keys['secret_key']}"}
    with httpx.Client(base_url=running.url, timeout=10) as client:
        for reportid, subject in acknowledged.items():
            got = client.get(f"/api/v1/reports/{reportid}", headers=auth)
            assert got.status_code == 200, reportid
            assert got.json()["subject"] == subject
            shot_resp = client.get(f"/api/v1/reports/{reportid}/screenshot", headers=auth)
            assert shot_resp.content == shot
        listed = client.get("/api/v1/reports", params={"limit": 500}, headers=auth).json()
        numbers = sorted(r["ticketnr"] for r in listed["reports"])
        assert numbers == list(range(1, len(numbers) + 1))  # no gaps, no duplicates


def test_sigterm_lets_in_flight_upload_finish(running: ServerProcess) -> None:
    keys = create_project(running.data_dir)
    running.start()
    boundary = "slowboundary"
    shot = png_bytes()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n'
        f"{keys['public_key']}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="subject"\r\n\r\nslow\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    started = threading.Event()

    async def slow_body():  # type: ignore[no-untyped-def]
        yield head
        started.set()
        for i in range(0, len(shot), 16):
            await asyncio.sleep(0.05)
            yield shot[i : i + 16]
        yield tail

    result: dict[str, object] = {}

    def upload() -> None:
        async def go() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                resp = await client.post(
                    f"{running.url}/api/v1/reports",
                    content=slow_body(),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                )
                result["status"] = resp.status_code

        asyncio.run(go())

    t = threading.Thread(target=upload)
    t.start()
    assert started.wait(10)
    time.sleep(0.2)
    code = running.terminate(timeout=60)
    t.join(30)
    assert result.get("status") == 201
    assert code == 0


def test_100mib_upload_does_not_grow_server_memory(data_dir: Path) -> None:
    server = ServerProcess(data_dir, free_port(), "--max-report-bytes", "200MiB")
    keys = create_project(data_dir)
    server.start()
    try:
        proc = psutil.Process(server.pid)
        # warm up the code paths once, then measure
        httpx.post(f"{server.url}/api/v1/reports", data={"key": keys["public_key"]}, timeout=10)
        before = proc.memory_info().rss
        peak = before
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        chunk = b"\xab" * MiB

        def body() -> Iterator[bytes]:
            boundary = "bigboundary"
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n'
                f"{keys['public_key']}\r\n--{boundary}\r\nContent-Disposition: form-data; "
                'name="attachment"; filename="big.bin"\r\n\r\n'
            ).encode()
            for _ in range(100):
                yield chunk
            yield f"\r\n--{boundary}--\r\n".encode()

        resp = httpx.post(
            f"{server.url}/api/v1/reports",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=bigboundary"},
            timeout=120,
        )
        done.set()
        watcher.join()
        assert resp.status_code == 201, resp.text
        growth = (peak - before) / MiB
        assert growth < 20, f"server RSS grew by {growth:.1f} MiB for a 100 MiB upload"
        blobs = list((data_dir / "blobs" / "reports").rglob("*.attachment-1"))
        assert len(blobs) == 1 and blobs[0].stat().st_size == 100 * MiB
    finally:
        server.stop()


@pytest.mark.parametrize("level", ["info", "warning"])
def test_access_log_lines_follow_the_log_level(data_dir: Path, level: str) -> None:
    """At info, each request has an access log line carrying its request id; at warning
    uvicorn is not asked for them at all (it formatted each one before dropping it)."""
    server = ServerProcess(data_dir, free_port(), FIELDREPORT_LOG_LEVEL=level)
    try:
        server.start()
        resp = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "access-1"})
        assert resp.headers["x-request-id"] == "access-1"
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if "GET /healthz" in line]
    if level == "info":
        assert any("[access-1]" in line and " 200" in line for line in lines), lines
    else:
        assert lines == []
