"""``fieldreport session list|show`` and ``fieldreport gc`` as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

from fieldreport.settings import Settings
from fieldreport.state import open_state
from fieldreport.storage.projects import create_project
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.session_batches import record_batch
from fieldreport.storage.sessions import NewSession, insert_session
from tests.support.proc import fieldreport_cmd, subprocess_env


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fieldreport_cmd(*args, "--data-dir", str(data_dir)),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _seed(data_dir: Path) -> tuple[str, str]:
    state = await open_state(Settings(data_dir=data_dir))
    try:
        async with state.db.write() as conn:
            project = await create_project(conn, "acme")
        ids = []
        for age_days in (40, 1):
            sid = str(uuid.uuid4())
            when = utcnow() - timedelta(days=age_days)
            key = f"sessions/{project.project.id}/{sid}/b1"
            await state.blobs.put_bytes(key, b"[{}]")
            async with state.db.write() as conn:
                await insert_session(
                    conn,
                    NewSession(
                        id=sid,
                        project_id=project.project.id,
                        platform="ios",
                        user_uuid="u1",
                        started_at=when,
                        user_device="Pixel 8",
                    ),
                )
                await record_batch(
                    conn,
                    session_id=sid,
                    project_id=project.project.id,
                    late=False,
                    received_at=when,
                    size=4,
                    encoding="",
                    blob_key=key,
                )
                await record_batch(  # a small batch: stored in its row
                    conn,
                    session_id=sid,
                    project_id=project.project.id,
                    late=True,
                    received_at=when,
                    size=2,
                    encoding="",
                    blob_key=None,
                    data=b"[]",
                )
            ids.append(sid)
        return ids[0], ids[1]
    finally:
        await state.close()


def test_session_list_show_and_gc(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old, recent = asyncio.run(_seed(data))

    listed = _run(data, "session", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == [recent, old]
    text = _run(data, "session", "list", "--project", "acme")
    assert old in text.stdout and "ios" in text.stdout
    assert _run(data, "session", "list", "--project", "nope").returncode != 0

    shown = json.loads(_run(data, "session", "show", old, "--json").stdout)
    assert shown["user_device"] == "Pixel 8" and shown["batch_count"] == 2
    assert [(b["seq"], b["late"], b["size"]) for b in shown["batches"]] == [
        (1, False, 4),
        (2, True, 2),
    ]
    assert shown["reports"] == []
    assert "Pixel 8" in _run(data, "session", "show", old).stdout
    missing = _run(data, "session", "show", "nope")
    assert missing.returncode != 0 and "no session" in missing.stderr

    dry = _run(data, "gc", "--older-than", "30d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["sessions"] == 1
    assert len(json.loads(_run(data, "session", "list", "--json").stdout)) == 2

    stray = data / "blobs" / "sessions" / "1" / str(uuid.uuid4()) / "b1"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"[]")  # a batch blob whose session is gone
    lost = data / "blobs" / "reports" / "1" / str(uuid.uuid4()) / "screenshot.png"
    lost.parent.mkdir(parents=True)
    lost.write_bytes(b"png")  # a report's file whose report never committed, 2 hours ago
    os.utime(lost, (time.time() - 7200, time.time() - 7200))
    crashed = data / "blobs" / ".tmp" / f"{uuid.uuid4().hex}.part"
    crashed.write_bytes(b"half a fi")  # a write a crash interrupted, 2 hours ago
    os.utime(crashed, (time.time() - 7200, time.time() - 7200))
    writing = data / "blobs" / ".tmp" / f"{uuid.uuid4().hex}.part"
    writing.write_bytes(b"in progress")  # written just now: left alone
    done = _run(data, "gc", "--older-than", "30d", "--orphans")
    assert done.returncode == 0, done.stderr
    assert "removed 1 sessions" in done.stdout and "removed 1 orphaned batch" in done.stdout
    assert "removed 1 orphaned report files" in done.stdout
    assert "removed 1 partial files of interrupted writes" in done.stdout
    assert not stray.exists() and not lost.exists() and not crashed.exists()
    assert writing.exists()
    assert [s["id"] for s in json.loads(_run(data, "session", "list", "--json").stdout)] == [recent]
    blobs = sorted(p.relative_to(data / "blobs").as_posix() for p in (data / "blobs").rglob("b1"))
    assert blobs == [f"sessions/1/{recent}/b1"]

    assert _run(data, "gc", "--older-than", "soon").returncode == 2
    assert _run(data, "gc").returncode == 2
