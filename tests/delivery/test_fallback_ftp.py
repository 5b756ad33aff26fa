"""The chain across transports: the HTTP primary is down, the report lands on the FTP backup
with the PDF the worker rendered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import add_dest, attempts, only_delivery, submit
from tests.delivery.receivers import down_url
from tests.delivery.transports.conftest import background
from tests.support.images import png_bytes


@pytest.fixture
def ftp_site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    root = tmp_path / "ftp-root"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("bot", "ftp-pw-1", str(root), perm="elradfmwMT")

    class Handler(FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), Handler)
    port = int(server.socket.getsockname()[1])
    with background(
        lambda: server.serve_forever(timeout=0.05, blocking=False, handle_exit=False),
        server.close_all,
    ):
        yield root, port


async def test_http_down_falls_back_to_ftp(
    state: AppState,
    project: NewProject,
    client: httpx.AsyncClient,
    ftp_site: tuple[Path, int],
) -> None:
    root, port = ftp_site
    await add_dest(state, project, down_url(), retry_schedule=[0])
    await add_dest(state, project, f"ftp://bot:ftp-pw-1@127.0.0.1:{port}/incoming", backup=True)
    report_id = await submit(client, project)
    worker = Worker(state)
    try:
        await worker.run_until_idle()
    finally:
        await worker.sender.close()
    d = await only_delivery(state)
    tries = await attempts(state, d.id)
    assert d.status == "delivered", tries
    assert [a.outcome for a in tries] == ["next", "delivered"]
    assert tries[1].destination.startswith("ftp://bot:***@127.0.0.1")
    (folder,) = list((root / "incoming").iterdir())
    assert report_id in folder.name
    files = {p.name: p for p in folder.iterdir()}
    pdf = next(p for name, p in files.items() if name.endswith(".pdf"))
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert png_bytes(200, 120) in [p.read_bytes() for p in files.values()]
    meta = json.loads(next(p for n, p in files.items() if n.endswith(".json")).read_text())
    assert meta["reportid"] == report_id
