"""SFTP transport (``sftp://``): one folder per report, published by rename.

``sftp://user[:password]@host:22/srv/reports?key_file=/etc/fieldreport/id_ed25519``

- The path is absolute on the server; ``/~/reports`` is relative to the user's home.
  Missing directories are created.
- Authentication: the password in the URL, or ``key_file=`` (a private key file; for an
  encrypted key, ``passphrase_file=`` names a file holding its passphrase, so the passphrase
  itself is never part of the URL), or both.
- The server's host key is ALWAYS verified: against ``known_hosts=/path`` when given, else
  ``~/.ssh/known_hosts`` of the user running fieldreport; or pinned with
  ``host_key=SHA256:…`` (the fingerprint ``ssh-keygen -lf`` prints). An unknown or changed
  host key fails permanently; there is no option to skip the check.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import asyncssh

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.ssrf import BlockedDestination
from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.transports.connect import close_quietly, open_checked_socket
from fieldreport.delivery.transports.outcome import Attempt, describe
from fieldreport.delivery.transports.report_folder import publish
from fieldreport.delivery.transports.urls import DestinationURL, parse_destination_url

DEFAULT_PORTS = {"sftp": 22}
PARAMS = frozenset({"key_file", "passphrase_file", "known_hosts", "host_key"})
# SFTP errors only the server's admin can fix: retrying cannot help.
_ADMIN_ONLY = (
    asyncssh.SFTPPermissionDenied,
    asyncssh.SFTPNoSuchFile,
    asyncssh.SFTPNoSpaceOnFilesystem,
    asyncssh.SFTPQuotaExceeded,
)
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


def _parse(url: str) -> DestinationURL:
    parsed = parse_destination_url(url, default_ports=DEFAULT_PORTS, allowed_params=PARAMS)
    if not parsed.username:
        raise ValueError("sftp:// URLs need a user name: sftp://user@host/path")
    if parsed.password is None and parsed.param("key_file") is None:
        raise ValueError(
            "sftp:// URLs need a password (sftp://user:pass@host/path) "
            "or a key file (?key_file=/path/to/id_ed25519)"
        )
    for name in ("key_file", "passphrase_file", "known_hosts"):
        value = parsed.param(name)
        if value is not None and not os.path.isabs(value):
            raise ValueError(f"{name} must be an absolute path (got {value!r})")
    if parsed.param("passphrase_file") is not None and parsed.param("key_file") is None:
        raise ValueError("passphrase_file= applies to key_file=; no key_file given")
    pin = parsed.param("host_key")
    if pin is not None and not _FINGERPRINT.match(pin):
        raise ValueError(
            "host_key must be a SHA256 fingerprint as `ssh-keygen -lf` prints it "
            "(SHA256: followed by 43 base64 characters)"
        )
    return parsed


def check_url(url: str) -> None:
    """Validate an ``sftp://`` destination URL (raises ValueError)."""
    _parse(url)


def remote_base(path: str) -> str:
    """The folder on the server: absolute, or relative to the home for ``/~/…``."""
    if path == "/~" or path.startswith("/~/"):
        return path[3:].strip("/") or "."
    return path


class _PinnedHostKey(asyncssh.SSHClient):
    """Accepts a host key that is not in known_hosts only when it matches the pinned one."""

    def __init__(self, fingerprint: str | None) -> None:
        self._fingerprint = fingerprint

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._fingerprint is not None and key.get_fingerprint("sha256") == self._fingerprint


class _SFTPFolders:
    """report_folder.RemoteFolders over an asyncssh SFTP client."""

    def __init__(self, sftp: asyncssh.SFTPClient) -> None:
        self._sftp = sftp

    async def make_dirs(self, path: str) -> None:
        if path not in ("", ".", "/"):
            await self._sftp.makedirs(path, exist_ok=True)

    async def write(self, path: str, data: bytes) -> None:
        async with self._sftp.open(path, "wb") as file:
            await file.write(data)

    async def rename(self, source: str, target: str) -> None:
        await self._sftp.rename(source, target)

    async def exists(self, path: str) -> bool:
        return bool(await self._sftp.exists(path))

    async def remove_tree(self, path: str) -> None:
        await self._sftp.rmtree(path)


def _known_hosts(parsed: DestinationURL) -> str | bytes:
    path = parsed.param("known_hosts")
    if path is not None:
        if not os.path.isfile(path):
            raise _ConfigError(f"known_hosts file {path} does not exist")
        return path
    default = Path("~", ".ssh", "known_hosts").expanduser()
    if default.is_file():
        return str(default)
    if parsed.param("host_key") is not None:
        return b""  # only the pinned key is trusted
    raise _ConfigError(
        f"no known_hosts file to verify the host key of {parsed.host} ({default} does not "
        "exist): add the server's key to it, or give known_hosts=/path or host_key=SHA256:…"
    )


def _read_key(key_file: str, passphrase_file: str | None) -> asyncssh.SSHKey:
    """Load the client key (in a thread: decrypting runs a deliberately slow KDF)."""
    passphrase = None
    if passphrase_file is not None:
        try:
            with open(passphrase_file, encoding="utf-8") as file:
                passphrase = file.read().rstrip("\r\n")
        except OSError as exc:
            message = f"cannot read passphrase_file {passphrase_file}: {exc.strerror}"
            raise _ConfigError(message) from None
    try:
        return asyncssh.read_private_key(key_file, passphrase)
    except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise _ConfigError(f"cannot read key_file {key_file}: {describe(exc)}") from None


class _ConfigError(Exception):
    """The destination cannot work as configured; retrying cannot help."""


async def send(
    url: str,
    bundle: ReportBundle,
    *,
    token: str | None,
    timeout: float,  # noqa: ASYNC109 (the transport contract; enforced with asyncio.timeout)
    allow_private: bool,
) -> SendResult:
    """Upload the report folder; never raises for a failed delivery."""
    try:
        parsed = _parse(url)
    except ValueError as exc:
        return Attempt([], phase=None).failed(f"invalid destination: {exc}", permanent=True)
    attempt = Attempt(parsed.secrets)
    progress: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            final = await _deliver(attempt, parsed, bundle, token, timeout, allow_private, progress)
        return attempt.ok(response=f"uploaded {final}")
    except Exception as exc:
        if progress and attempt.phase == "uploading":
            attempt.phase = progress[-1]
        return _failure(attempt, parsed, exc, timeout)


async def _deliver(
    attempt: Attempt,
    parsed: DestinationURL,
    bundle: ReportBundle,
    token: str | None,
    io_timeout: float,
    allow_private: bool,
    progress: list[str],
) -> str:
    known_hosts = _known_hosts(parsed)
    key_file = parsed.param("key_file")
    client_keys: list[asyncssh.SSHKey] | None = None
    if key_file is not None:
        client_keys = [
            await asyncio.to_thread(_read_key, key_file, parsed.param("passphrase_file"))
        ]
    sock: socket.socket | None = await open_checked_socket(
        parsed.host, parsed.port, allow_private=allow_private
    )
    attempt.phase = "SSH handshake"
    fingerprint = parsed.param("host_key")
    try:
        conn = await asyncssh.connect(
            sock=sock,
            host_key_alias=parsed.host,  # known_hosts entries name the host, not our address
            known_hosts=known_hosts,
            client_factory=lambda: _PinnedHostKey(fingerprint),
            username=parsed.username,
            password=parsed.password,
            client_keys=client_keys,
            agent_path=None,
            config=None,
            preferred_auth=("publickey", "keyboard-interactive", "password"),
            login_timeout=io_timeout,
            connect_timeout=io_timeout,
        )
        sock = None  # owned by the connection now
    finally:
        close_quietly(sock)
    try:
        attempt.phase = "opening SFTP"
        sftp = await conn.start_sftp_client()
        try:
            attempt.phase = "uploading"
            folders = _SFTPFolders(sftp)
            return await publish(folders, remote_base(parsed.path), bundle, token, progress)
        finally:
            sftp.exit()
    finally:
        conn.close()


def _failure(
    attempt: Attempt, parsed: DestinationURL, exc: Exception, timeout: float
) -> SendResult:
    where = parsed.netloc_for_display
    if isinstance(exc, TimeoutError):
        return attempt.timed_out(timeout)
    if isinstance(exc, BlockedDestination | _ConfigError):
        return attempt.failed(str(exc), permanent=True)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return attempt.failed(
            f"host key of {parsed.host} not verified ({exc.reason}); if the server's key "
            "really changed, update known_hosts or host_key= (see docs/destinations.md)",
            permanent=True,
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return attempt.failed(f"authentication refused: {exc.reason}", permanent=True)
    if isinstance(exc, asyncssh.SFTPError):
        # Permission, no such path, no space … on the server: fixable only by its admin.
        permanent = isinstance(
            exc,
            asyncssh.SFTPPermissionDenied
            | asyncssh.SFTPNoSuchFile
            | asyncssh.SFTPNoSpaceOnFilesystem,
        )
        return attempt.failed(
            f"server refused: {exc.reason} (SFTP status {exc.code})", permanent=permanent
        )
    if isinstance(exc, asyncssh.DisconnectError):
        return attempt.failed(f"disconnected by {where}: {exc.reason}")
    if isinstance(exc, OSError):
        return attempt.failed(f"cannot reach {where}: {describe(exc)}")
    return attempt.failed(f"unexpected error: {describe(exc)}")
