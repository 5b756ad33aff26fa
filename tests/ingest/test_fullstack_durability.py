"""Every acknowledged backend event survives a SIGKILL of the server (group commit included)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.server_proc import ServerProcess
from tests.test_server_process import create_project


@pytest.fixture
def running(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", free_port())
    yield server
    server.stop()


def test_every_acknowledged_event_survives_sigkill(running: ServerProcess) -> None:
    keys = create_project(running.data_dir)
    running.start()
    auth = {"Authorization": f"Bearer {keys['secret_key']}"}
    recording = str(uuid.uuid4())
    named = httpx.post(
        f"{running.url}/api/v1/reports",
        data={"key": keys["public_key"], "subject": "s", "recording": recording},
    )
    assert named.status_code == 201
    acknowledged: dict[int, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def event(title: str) -> dict[str, object]:
        return {
            "uuid": recording,
            "type": "log",
            "payload": "x" * 200,
            "timestamp": 1700000000000,
            "title": title,
        }

    def send_until_killed(worker: int) -> None:
        with httpx.Client(base_url=running.url, timeout=10, headers=auth) as client:
            for i in range(2000):  # bounded
                if stop.is_set():
                    return
                titles = [f"w{worker}-{i}-{k}" for k in range(5 if worker % 2 else 1)]
                try:
                    if len(titles) == 1:
                        resp = client.post("/api/fullstack/v1/send", json=event(titles[0]))
                        results = [resp.json()] if resp.status_code == 200 else []
                    else:
                        resp = client.post(
                            "/api/fullstack/v1/send-batch", json=[event(t) for t in titles]
                        )
                        results = resp.json()["results"] if resp.status_code == 200 else []
                except (httpx.HTTPError, ValueError):
                    return  # the server died mid-request: not acknowledged
                with lock:
                    for title, result in zip(titles, results, strict=False):
                        if result.get("success") == "true":
                            acknowledged[result["data"]["data"]["ok"]["id"]] = title

    threads = [threading.Thread(target=send_until_killed, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    running.kill()  # SIGKILL while requests are in flight
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acknowledged) >= 100

    running.start()
    stored: dict[int, str] = {}
    offset: int | None = 0
    with httpx.Client(base_url=running.url, timeout=10, headers=auth) as client:
        while offset is not None:
            page = client.get(
                f"/api/v1/sessions/{recording}/backend-events",
                params={"limit": 5000, "offset": offset},
            ).json()
            stored.update({e["id"]: e["title"] for e in page["events"]})
            offset = page["next_offset"]
    missing = {i: t for i, t in acknowledged.items() if stored.get(i) != t}
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {list(missing.items())[:3]}"
