"""`fieldreport serve` with sessions: a 200 from append is durable across SIGKILL (and the
same token works after a restart: the secret is in the data directory); retention runs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from fieldreport.settings import Settings
from fieldreport.state import open_state
from fieldreport.storage.projects import create_project
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.sessions import NewSession, insert_session
from tests.conftest import free_port
from tests.support.proc import fieldreport_cmd, subprocess_env
from tests.support.server_proc import ServerProcess


def test_every_acknowledged_batch_survives_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = subprocess.run(
        fieldreport_cmd("project", "create", "acme", "--json", "--data-dir", str(data_dir)),
        env=subprocess_env(),
        capture_output=True,
        check=True,
    )
    keys = json.loads(out.stdout)
    server = ServerProcess(data_dir, free_port())
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            started = [
                client.post(
                    "/v1/web/start",
                    json={"projectKey": keys["public_key"], "trackerVersion": "1"},
                ).json()
                for _ in range(4)
            ]
        acknowledged: dict[str, list[tuple[int, bytes]]] = {s["sessionID"]: [] for s in started}
        stop = threading.Event()

        def push_until_killed(worker: int) -> None:
            session = started[worker]
            headers = {"Authorization": f"Bearer {session['token']}"}
            with httpx.Client(base_url=server.url, timeout=10) as client:
                for i in range(300):  # bounded
                    if stop.is_set():
                        return
                    body = json.dumps([{"type": 3, "w": worker, "i": i}]).encode()
                    try:
                        resp = client.post("/v1/web/append", content=body, headers=headers)
                    except httpx.HTTPError:
                        return  # died mid-request: not acknowledged
                    if resp.status_code == 200:
                        acknowledged[session["sessionID"]].append((resp.json()["seq"], body))

        threads = [threading.Thread(target=push_until_killed, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while sum(map(len, acknowledged.values())) < 80 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
        stop.set()
        for t in threads:
            t.join(15)
        assert sum(map(len, acknowledged.values())) >= 20

        server.start()
        auth = {"Authorization": f"Bearer {keys['secret_key']}"}
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for session in started:
                sid = session["sessionID"]
                events = client.get(f"/api/v1/sessions/{sid}/events", headers=auth).json()
                got = [json.dumps([e]).encode() for e in events]
                mine = [body for _, body in sorted(acknowledged[sid])]
                assert got[: len(mine)] == mine  # every acknowledged batch, in order
                assert len(got) - len(mine) in (0, 1)  # + one committed as the server died
                seqs = [seq for seq, _ in sorted(acknowledged[sid])]
                assert seqs == list(range(1, len(seqs) + 1))
                # The secret survived the restart: the session's token still works.
                again = client.post(
                    "/v1/web/append",
                    content=b'[{"after": "restart"}]',
                    headers={"Authorization": f"Bearer {session['token']}"},
                )
                assert again.status_code == 200
    finally:
        server.stop()


def test_serve_runs_retention_when_configured(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())

    async def seed() -> str:
        state = await open_state(Settings(data_dir=data_dir))
        try:
            async with state.db.write() as conn:
                project = await create_project(conn, "acme")
                for sid, age in ((old, timedelta(days=3)), (recent, timedelta(hours=1))):
                    await insert_session(
                        conn,
                        NewSession(
                            id=sid,
                            project_id=project.project.id,
                            platform="web",
                            user_uuid="u",
                            started_at=utcnow() - age,
                        ),
                    )
            return project.secret_key
        finally:
            await state.close()

    secret = asyncio.run(seed())
    server = ServerProcess(data_dir, free_port(), FIELDREPORT_SESSION_RETENTION="2d")
    try:
        server.start()
        auth = {"Authorization": f"Bearer {secret}"}
        deadline = time.monotonic() + 20
        listed: list[str] = []
        while time.monotonic() < deadline:
            got = httpx.get(f"{server.url}/api/v1/sessions", headers=auth, timeout=5).json()
            listed = [s["id"] for s in got["sessions"]]
            if old not in listed:
                break
            time.sleep(0.05)
        assert listed == [recent]
    finally:
        server.stop()
