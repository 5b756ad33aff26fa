"""``fieldreport receive`` (a real subprocess) takes all three formats from our sender."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from fieldreport.delivery.loader import load_bundle
from fieldreport.delivery.worker import Sender
from fieldreport.state import AppState
from fieldreport.storage.destinations import Destination
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer
from tests.delivery.helpers import submit
from tests.delivery.receivers import free_port
from tests.support.images import png_bytes
from tests.support.proc import fieldreport_cmd, subprocess_env

SECRET = "whsec_" + base64.b64encode(b"reference-receiver-secret-32byte").decode()


def dest(url: str, fmt: str, token: str | None = "T", secret: str | None = SECRET) -> Destination:
    return Destination(
        id=1, project_id=1, position=0, url=url, format=fmt, token=token,
        secret=secret if fmt != "multipart" else None, headers=[], retry_schedule=[0],
        timeout=10,
    )  # fmt: skip


@pytest.fixture
async def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    out = tmp_path / "received"
    proc = await asyncio.create_subprocess_exec(
        *fieldreport_cmd("receive", "--dir", str(out), "--token", "T", "--secret", SECRET,
                         "--port", str(port)),
        env=subprocess_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/push", out
    proc.terminate()
    await proc.wait()


async def test_reference_receiver_takes_every_format(
    state: AppState,
    project: NewProject,
    client: httpx.AsyncClient,
    server: RunningServer,
    receiver: tuple[str, Path],
) -> None:
    url, out = receiver
    state.settings.public_url = server.url  # so the receiver can follow the JSON file links
    sender = Sender(state)
    try:
        for fmt, suffix in (("multipart", ""), ("json", ""), ("xml", ""), ("json", "#inline")):
            report_id = await submit(client, project, subject=f"via {fmt}{suffix}")
            bundle = await load_bundle(state, report_id)
            assert bundle is not None
            result = await sender.send(dest(url + suffix, fmt), bundle)
            assert result.ok and result.response_excerpt == "ok", result
            folder = out / report_id
            fields = json.loads((folder / "fields.json").read_text())
            assert fields["format"] == fmt and fields["subject"] == f"via {fmt}{suffix}"
            assert fields["notelist"] == ["first note", "second note: ünïcode ✓"]
            assert str(fields["ticketnr"]) == bundle.ticketnr.__str__()
            assert (folder / "Screen_shot.png").read_bytes() == png_bytes(200, 120)
            assert (folder / "report.pdf").exists() == (fmt == "xml")
            # Delivered again (at-least-once): still 200, the first copy is kept.
            again = await sender.send(dest(url + suffix, fmt), bundle)
            assert again.ok and "already received" in again.response_excerpt
        assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]

        bundle = await load_bundle(state, await submit(client, project))
        assert bundle is not None
        for bad in (
            dest(url, "multipart", token="wrong"),
            dest(url, "json", secret="whsec_" + base64.b64encode(b"x" * 32).decode()),
            dest(url, "xml", secret=None),
        ):
            refused = await sender.send(bad, bundle)
            assert refused.status_code == 500 and refused.response_excerpt == "no access"
        assert not (out / bundle.reportid).exists()
    finally:
        await sender.close()
