"""``fieldreport events list`` as a real subprocess, on both backends."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest
from pydantic import SecretStr

from fieldreport.cli.common import STORAGE_FIELDS
from fieldreport.settings import Settings, env_var
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.support.proc import fieldreport_cmd, subprocess_env
from tests.support.recordings import start_session


def _storage_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in STORAGE_FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        env[env_var(name)] = (
            value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        )
    return env


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fieldreport_cmd("events", "list", *args),
        env=subprocess_env(**_storage_env(settings)),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"fullstack_pending_ttl": "0s"}


async def test_events_list(
    client: httpx.AsyncClient, project: NewProject, state: AppState, settings: Settings
) -> None:
    recording = await start_session(state, project.project.id)
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    events = [
        {"uuid": recording, "type": "log", "payload": "hello\nworld", "timestamp": 1700000000000},
        {
            "uuid": recording,
            "type": "exception",
            "title": "ValueError",
            "payload": "Traceback…",
            "timestamp": 1700000000500,
            "origin": "web-1",
        },
    ]
    resp = await client.post("/api/fullstack/v1/send-batch", json=events, headers=auth)
    assert resp.json()["success"] == "true"
    # with FULLSTACK_PENDING_TTL=0 an unknown recording is refused at once, nothing kept
    refused = await client.post(
        "/api/fullstack/v1/send", json={**events[0], "uuid": str(uuid.uuid4())}, headers=auth
    )
    assert refused.status_code == 404
    assert refused.json()["error"][0]["message"] == "No BugReplay-Recording-UUID, doing nothing"

    out = _run(settings, "--recording", recording, "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [e["type"] for e in listed] == ["log", "exception"]
    assert listed[1]["title"] == "ValueError" and listed[1]["level"] == "error"
    assert listed[0]["project_id"] == project.project.id

    text = _run(settings, "--recording", recording, "--type", "exception")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.strip().splitlines()
    assert len(lines) == 1
    assert (
        "2023-11-14 22:13:20.500" in lines[0] and "ValueError" in lines[0] and "web-1" in lines[0]
    )

    none = _run(settings, "--recording", str(uuid.uuid4()))
    assert none.returncode == 0 and "no backend events" in none.stdout
