"""The README's Django setup in a real Django process, shipping to a running fieldreport."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx

from fieldreport.state import AppState
from fieldreport.storage.backend_events import BackendEvent, list_events
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer, free_port
from tests.support.proc import SRC, subprocess_env
from tests.support.recordings import start_session


async def _wait_for_events(state: AppState, recording: str, count: int) -> list[BackendEvent]:
    for _ in range(300):  # bounded: the child's handler flushes every 0.1 s
        async with state.db.read() as conn:
            events = await list_events(conn, recording)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    return events


async def test_django_site(server: RunningServer, project: NewProject, state: AppState) -> None:
    recording = await start_session(state, project.project.id)
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.django_site", str(port)],
        env=subprocess_env(FR_URL=server.url, FR_SECRET_KEY=project.secret_key),
        cwd=SRC.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        assert line.strip() == "ready"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            ok = await http.get("/checkout", headers={"br-recording-uuid": recording})
            assert ok.status_code == 200 and ok.text == recording
            boom = await http.get("/boom", headers={"br-recording-uuid": recording})
            assert boom.status_code == 500
            assert (await http.get("/checkout")).text == "none"
        events = await _wait_for_events(state, recording, 2)
    finally:
        child.terminate()
        child.wait(10)
    logs = [e for e in events if e.type == "log"]
    exceptions = [e for e in events if e.type == "exception"]
    assert [e.title for e in logs] == ["charging card for order 7"]
    assert len(exceptions) == 1
    assert exceptions[0].title == "ValueError" and "card declined" in exceptions[0].payload
    assert exceptions[0].payload.startswith("Internal Server Error: /boom")
