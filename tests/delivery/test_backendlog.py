"""Backend events of the report's recording travel with the push (full-stack API)."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP

import httpx

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import add_dest
from tests.delivery.receivers import Receiver, serve_receiver
from tests.support.recordings import start_session


def parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out.setdefault(
            str(name), (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        )
    return out


async def test_backendlog_part_carries_the_recordings_events(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    recording = await start_session(state, project.project.id)
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    for i, level in enumerate(("info", "error")):
        resp = await client.post(
            "/api/fullstack/v1/send",
            json={
                "uuid": recording,
                "type": "log",
                "level": level,
                "timestamp": 1622706694345 + i,
                "title": f"event {i}",
                "payload": '{"a": 1}',
                "metadata": "{}",
                "origin": "api-1",
            },
            headers=auth,
        )
        assert resp.status_code == 200, resp.text
    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url, token="t")
        for with_recording in (True, False):
            data = {"key": project.public_key, "subject": f"recording {with_recording}"}
            if with_recording:
                data["recording"] = recording
            assert (await client.post("/api/v1/reports", data=data)).status_code == 201
        worker = Worker(state)
        await worker.run_until_idle()
        await worker.sender.close()
    by_subject = {}
    for r in rx.requests:
        # Always multipart (seed 000), even without a file or notes.
        assert r.content_type.startswith("multipart/form-data"), r.content_type
        found = parts(r.content_type, r.body)
        by_subject[found["subject"][1].decode()] = found
    first, second = by_subject["recording True"], by_subject["recording False"]
    filename, raw = first["backendlog"]
    assert filename == "backendlog.json"
    events = json.loads(raw)
    assert [(e["title"], e["level"]) for e in events] == [("event 0", "info"), ("event 1", "error")]
    assert "backendlog" not in second
