"""SFTP transport against a real asyncssh SFTP server (in-process) on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncssh
import pytest

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.transports import sftp
from fieldreport.delivery.transports.base import SendResult
from tests.delivery.transports.conftest import REPORT_ID

FOLDER = f"42-{REPORT_ID}"
PASSWORD = "s3cr#t:pw"
QUOTED = "s3cr%23t%3Apw"


@dataclass
class SFTPSite:
    root: Path
    port: int
    host_key: asyncssh.SSHKey
    known_hosts: Path
    client_key_file: Path


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "bot" and password == PASSWORD


class _SFTPServer(asyncssh.SFTPServer):
    """Refuses to create anything under /locked, as a server with a read-only share does
    (the tests run as root, which file permissions would not stop)."""

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        if b"/locked/" in self.map_path(path) + b"/":
            raise asyncssh.SFTPPermissionDenied("read-only share")
        super().mkdir(path, attrs)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[SFTPSite]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    (root / "locked").mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(client_key_file)
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_Server,
        authorized_client_keys=asyncssh.import_authorized_keys(
            client_key.export_public_key().decode()
        ),
        sftp_factory=lambda chan: _SFTPServer(chan, chroot=os.fsencode(root)),
        allow_scp=False,
    )
    port = int(server.sockets[0].getsockname()[1])
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[localhost]:{port} {host_key.export_public_key().decode()}")
    yield SFTPSite(root, port, host_key, known_hosts, client_key_file)
    server.close()
    await server.wait_closed()


async def send(
    target: str, bundle: ReportBundle, token: str | None = "T0K3N", timeout: float = 10
) -> SendResult:
    return await sftp.send(target, bundle, token=token, timeout=timeout, allow_private=True)


def password_url(site: SFTPSite, path: str = "/incoming", **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"known_hosts": str(site.known_hosts), **extra}.items())
    return f"sftp://bot:{QUOTED}@localhost:{site.port}{path}?{query}"


async def test_password_auth_uploads_one_complete_folder(
    site: SFTPSite, bundle: ReportBundle
) -> None:
    result = await send(password_url(site), bundle)

    assert result.ok, result.error
    incoming = site.root / "incoming"
    assert sorted(os.listdir(incoming)) == [FOLDER]
    folder = incoming / FOLDER
    assert sorted(os.listdir(folder)) == ["report.json", "report.pdf", "screenshot.png"]
    assert (folder / "report.pdf").read_bytes() == bundle.pdf
    document = json.loads((folder / "report.json").read_text())
    assert document["token"] == "T0K3N"
    assert document["notelist"] == bundle.notelist
    assert document["backend_events"] == bundle.backend_events


async def test_key_file_auth_and_redelivery_replaces(site: SFTPSite, bundle: ReportBundle) -> None:
    target = (
        f"sftp://bot@localhost:{site.port}/deep/er/reports"
        f"?key_file={site.client_key_file}&known_hosts={site.known_hosts}"
    )
    first = await send(target, bundle)
    assert first.ok, first.error

    second = await send(target, replace(bundle, notelist=["second"], pdf=None), token=None)

    assert second.ok, second.error
    reports = site.root / "deep" / "er" / "reports"
    assert sorted(os.listdir(reports)) == [FOLDER]  # no .partial- or .old- leftovers
    assert sorted(os.listdir(reports / FOLDER)) == ["report.json", "screenshot.png"]
    document = json.loads((reports / FOLDER / "report.json").read_text())
    assert document["notelist"] == ["second"] and "token" not in document


async def test_wrong_host_key_fails_permanently(
    site: SFTPSite, bundle: ReportBundle, tmp_path: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[localhost]:{site.port} {impostor}")

    result = await send(password_url(site).replace(str(site.known_hosts), str(wrong)), bundle)

    assert not result.ok and result.permanent
    assert "host key of localhost not verified" in (result.error or "")
    assert not (site.root / "incoming").exists()


async def test_host_not_in_known_hosts_fails_permanently(
    site: SFTPSite, bundle: ReportBundle, tmp_path: Path
) -> None:
    other = tmp_path / "other_known_hosts"
    other.write_text(f"other.example {site.host_key.export_public_key().decode()}")

    result = await send(password_url(site).replace(str(site.known_hosts), str(other)), bundle)

    assert not result.ok and result.permanent
    assert "not verified" in (result.error or "")


async def test_without_any_known_hosts_nothing_is_trusted(
    site: SFTPSite, bundle: ReportBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    target = f"sftp://bot:{QUOTED}@localhost:{site.port}/incoming"

    result = await send(target, bundle)

    assert not result.ok and result.permanent
    assert "no known_hosts file" in (result.error or "")


async def test_pinned_fingerprint(
    site: SFTPSite, bundle: ReportBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    fingerprint = site.host_key.get_fingerprint("sha256")
    target = f"sftp://bot:{QUOTED}@localhost:{site.port}/pinned?host_key={fingerprint}"

    assert (await send(target, bundle)).ok

    impostor = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    result = await send(target.replace(fingerprint, impostor), bundle)
    assert not result.ok and result.permanent
    assert "not verified" in (result.error or "")


async def test_wrong_password_is_permanent_and_never_shown(
    site: SFTPSite, bundle: ReportBundle
) -> None:
    result = await send(password_url(site).replace(QUOTED, "n0t-the-pw"), bundle)

    assert not result.ok and result.permanent
    assert "authentication refused" in (result.error or "")
    assert "n0t-the-pw" not in repr(result)


async def test_permission_denied_is_permanent(site: SFTPSite, bundle: ReportBundle) -> None:
    result = await send(password_url(site, "/locked/reports"), bundle)

    assert not result.ok and result.permanent
    assert "read-only share" in (result.error or "")
    assert os.listdir(site.root / "locked") == []


async def test_home_relative_path(site: SFTPSite, bundle: ReportBundle) -> None:
    # The chrooted server's home is its root, so /~/inbox lands in <root>/inbox.
    result = await send(password_url(site, "/~/inbox"), bundle)

    assert result.ok, result.error
    assert os.listdir(site.root / "inbox") == [FOLDER]


async def test_connection_refused_is_transient(
    dead_port: int, bundle: ReportBundle, tmp_path: Path
) -> None:
    (tmp_path / "kh").write_text("")
    result = await send(
        f"sftp://bot:pw@localhost:{dead_port}/x?known_hosts={tmp_path / 'kh'}", bundle
    )

    assert not result.ok and not result.permanent
    assert "cannot reach" in (result.error or "")


async def test_hung_server_times_out(
    silent_port: int, bundle: ReportBundle, tmp_path: Path
) -> None:
    (tmp_path / "kh").write_text("")
    target = f"sftp://bot:pw@localhost:{silent_port}/x?known_hosts={tmp_path / 'kh'}"
    result = await send(target, bundle, timeout=0.3)

    assert not result.ok and not result.permanent
    assert "timed out after 0.3s" in (result.error or "")


async def test_private_destination_refused_unless_allowed(
    site: SFTPSite, bundle: ReportBundle
) -> None:
    result = await sftp.send(password_url(site), bundle, token=None, timeout=5, allow_private=False)

    assert not result.ok and result.permanent
    assert "loopback" in (result.error or "")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("sftp://h/x?key_file=/k", "need a user name"),
        ("sftp://u@h/x", "need a password"),
        ("sftp://u@h/x?key_file=k", "absolute path"),
        ("sftp://u:p@h/x?known_hosts=kh", "absolute path"),
        ("sftp://u:p@h/x?host_key=abc", "SHA256 fingerprint"),
        ("sftp://u:p@h/x?passphrase_file=/pp", "no key_file"),
        ("sftp://u@h/x?key_file=/k&passphrase_file=pp", "absolute path"),
        ("sftp://u@h/x?key_file=/k&passphrase=pp", "unknown parameter 'passphrase'"),
        ("sftp://u:p@h/x?insecure=1", "unknown parameter"),
    ],
)
def test_check_url_refuses(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sftp.check_url(target)


@pytest.mark.filterwarnings("ignore:Warning. bcrypt.kdf.. called with only")
async def test_encrypted_key_with_passphrase(
    site: SFTPSite, bundle: ReportBundle, tmp_path: Path
) -> None:
    encrypted = tmp_path / "id_encrypted"
    asyncssh.read_private_key(site.client_key_file).write_private_key(
        encrypted, passphrase="open sesame", rounds=2
    )
    base = (
        f"sftp://bot@localhost:{site.port}/enc?key_file={encrypted}&known_hosts={site.known_hosts}"
    )

    good = tmp_path / "passphrase"
    good.write_text("open sesame\n")
    result = await send(f"{base}&passphrase_file={good}", bundle)
    assert result.ok, result.error

    bad = tmp_path / "wrong-passphrase"
    bad.write_text("not-it")
    wrong = await send(f"{base}&passphrase_file={bad}", bundle)
    assert not wrong.ok and wrong.permanent
    assert "cannot read key_file" in (wrong.error or "")
    assert "not-it" not in repr(wrong)

    missing = await send(f"{base}&passphrase_file={tmp_path / 'nope'}", bundle)
    assert not missing.ok and missing.permanent
    assert "cannot read passphrase_file" in (missing.error or "")
