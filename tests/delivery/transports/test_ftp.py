"""FTP transport against a real pyftpdlib server (in a thread) on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.delivery.transports import ftp
from fieldreport.delivery.transports.base import SendResult
from tests.delivery.transports.conftest import REPORT_ID, background

FOLDER = f"42-{REPORT_ID}"


@dataclass
class FTPSite:
    root: Path
    port: int
    # For every file the server finished receiving: (its path, did the final folder exist?)
    received: list[tuple[str, bool]] = field(default_factory=list)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FTPSite]:
    root = tmp_path / "ftp-root"
    root.mkdir()
    (root / "readonly").mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("bot", "s3cr#t", str(root), perm="elradfmwMT")
    authorizer.add_user("reader", "r3ad", str(root), perm="elr")
    state = FTPSite(root, 0)

    class Handler(FTPHandler):  # type: ignore[misc]
        def on_file_received(self, file: str) -> None:
            final = root / "incoming" / FOLDER
            state.received.append((file, final.exists()))

    Handler.authorizer = authorizer
    Handler.banner = "fieldreport test FTP"
    Handler.auth_failed_timeout = 0.05
    server = FTPServer(("127.0.0.1", 0), Handler)
    state.port = int(server.socket.getsockname()[1])
    with background(
        lambda: server.serve_forever(timeout=0.05, blocking=False, handle_exit=False),
        server.close_all,
    ):
        yield state


async def send(
    target: str, bundle: ReportBundle, token: str | None = "T0K3N", timeout: float = 10
) -> SendResult:
    return await ftp.send(target, bundle, token=token, timeout=timeout, allow_private=True)


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def test_upload_creates_one_complete_folder(site: FTPSite, bundle: ReportBundle) -> None:
    result = await send(f"ftp://bot:s3cr%23t@localhost:{site.port}/incoming", bundle)

    assert result.ok, result.error
    assert result.response_excerpt == f"uploaded /incoming/{FOLDER}"
    incoming = site.root / "incoming"
    assert listing(incoming) == [FOLDER]  # no temporary or old folder left behind
    folder = incoming / FOLDER
    assert listing(folder) == ["report.json", "report.pdf", "screenshot.png"]
    assert (folder / "screenshot.png").read_bytes() == bundle.screenshot.data  # type: ignore[union-attr]
    assert (folder / "report.pdf").read_bytes() == bundle.pdf
    document = json.loads((folder / "report.json").read_text())
    assert document["token"] == "T0K3N"
    assert document["reportid"] == REPORT_ID and document["ticketnr"] == 42
    assert document["subject"] == bundle.subject
    assert document["notelist"] == bundle.notelist
    assert document["backend_events"] == bundle.backend_events
    assert document["files"]["screenshot"]["name"] == "screenshot.png"
    # Every file was written into a hidden temporary folder while the final one did not exist.
    assert len(site.received) == 3
    for path, final_existed in site.received:
        assert not final_existed
        assert f"/incoming/.{FOLDER}.partial-" in path


async def test_redelivery_replaces_the_folder_whole(site: FTPSite, bundle: ReportBundle) -> None:
    target = f"ftp://bot:s3cr%23t@localhost:{site.port}/incoming"
    first = await send(target, replace(bundle, attachments=[FileData("a.log", "text/plain", b"1")]))
    assert first.ok, first.error
    assert (site.root / "incoming" / FOLDER / "attachment-1-a.log").exists()

    second = await send(target, replace(bundle, notelist=["only this note"], pdf=None), token=None)

    assert second.ok, second.error
    incoming = site.root / "incoming"
    assert listing(incoming) == [FOLDER]
    folder = incoming / FOLDER
    # Nothing of the first delivery survives: the folder was swapped, not merged.
    assert listing(folder) == ["report.json", "screenshot.png"]
    document = json.loads((folder / "report.json").read_text())
    assert document["notelist"] == ["only this note"]
    assert "token" not in document
    # The second delivery's files also went to a temporary folder first.
    assert all(".partial-" in path for path, _ in site.received)


async def test_root_path_and_no_screenshot(site: FTPSite, bundle: ReportBundle) -> None:
    result = await send(
        f"ftp://bot:s3cr%23t@127.0.0.1:{site.port}/", replace(bundle, screenshot=None)
    )

    assert result.ok, result.error
    assert listing(site.root / FOLDER) == ["report.json", "report.pdf"]


async def test_wrong_password_is_permanent(site: FTPSite, bundle: ReportBundle) -> None:
    result = await send(f"ftp://bot:n0pe-n0pe@localhost:{site.port}/incoming", bundle)

    assert not result.ok and result.permanent
    assert result.status_code == 530
    assert "login refused" in (result.error or "")
    assert "n0pe-n0pe" not in repr(result)


async def test_no_write_permission_is_permanent_and_leaves_nothing(
    site: FTPSite, bundle: ReportBundle
) -> None:
    result = await send(f"ftp://reader:r3ad@localhost:{site.port}/readonly", bundle)

    assert not result.ok and result.permanent
    assert result.status_code == 550
    assert "r3ad" not in repr(result)
    assert listing(site.root / "readonly") == []


async def test_connection_refused_is_transient(dead_port: int, bundle: ReportBundle) -> None:
    result = await send(f"ftp://bot:s3cr3t@localhost:{dead_port}/x", bundle)

    assert not result.ok and not result.permanent
    assert "cannot reach" in (result.error or "")


async def test_hung_server_times_out(silent_port: int, bundle: ReportBundle) -> None:
    result = await send(f"ftp://bot:s3cr3t@localhost:{silent_port}/x", bundle, timeout=0.3)

    assert not result.ok and not result.permanent
    assert "timed out after 0.3s" in (result.error or "")


async def test_private_destination_refused_unless_allowed(
    site: FTPSite, bundle: ReportBundle
) -> None:
    result = await ftp.send(
        f"ftp://bot:s3cr%23t@localhost:{site.port}/incoming",
        bundle,
        token=None,
        timeout=5,
        allow_private=False,
    )

    assert not result.ok and result.permanent
    assert "loopback" in (result.error or "")
    assert not (site.root / "incoming").exists()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("sftp://u@h/x", "unsupported scheme"),
        ("ftp:///x", "no host"),
        ("ftp://h/x?passive=no", "unknown parameter"),
        ("ftp://:pw@h/x", "needs a user name"),
        ("ftp://h/a b", "spaces or control characters"),
    ],
)
def test_check_url_refuses(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ftp.check_url(target)


def test_check_url_accepts() -> None:
    ftp.check_url("ftp://files.example.com/reports")
    ftp.check_url("ftp://user:p%40ss@files.example.com:2121/")
