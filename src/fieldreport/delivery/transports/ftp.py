"""FTP transport (``ftp://``): one folder per report, published by rename.

``ftp://user:pass@host:21/incoming/reports`` — the path is absolute on the server (created
when missing); without credentials the login is anonymous. Passive mode (EPSV, then PASV); the
data connection always goes to the checked address of the control connection, never to an
address the server names in its PASV answer. Plain FTP sends the password unencrypted: prefer
``sftp://`` where the server allows it. See :mod:`report_folder` for the folder layout.
"""

from __future__ import annotations

import asyncio
import contextlib

import aioftp

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.ssrf import BlockedDestination
from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.transports.connect import checked_addresses
from fieldreport.delivery.transports.outcome import Attempt, describe
from fieldreport.delivery.transports.report_folder import publish
from fieldreport.delivery.transports.urls import DestinationURL, parse_destination_url

DEFAULT_PORTS = {"ftp": 21}
PARAMS: frozenset[str] = frozenset()
QUIT_TIMEOUT = 2.0
# Reply codes that mean "not logged in" / "need account": the credentials are wrong.
_LOGIN_REFUSED = ("530", "532")


def _parse(url: str) -> DestinationURL:
    parsed = parse_destination_url(url, default_ports=DEFAULT_PORTS, allowed_params=PARAMS)
    if parsed.password is not None and parsed.username is None:
        raise ValueError("a password needs a user name")
    return parsed


def check_url(url: str) -> None:
    """Validate an ``ftp://`` destination URL (raises ValueError)."""
    _parse(url)


class _FTPFolders:
    """report_folder.RemoteFolders over an aioftp client."""

    def __init__(self, client: aioftp.Client) -> None:
        self._client = client

    async def make_dirs(self, path: str) -> None:
        await self._client.make_directory(path, parents=True)

    async def write(self, path: str, data: bytes) -> None:
        async with self._client.upload_stream(path) as stream:
            await stream.write(data)

    async def rename(self, source: str, target: str) -> None:
        await self._client.rename(source, target)

    async def exists(self, path: str) -> bool:
        return bool(await self._client.exists(path))

    async def remove_tree(self, path: str) -> None:
        await self._client.remove(path)


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
    client: aioftp.Client | None = None
    try:
        async with asyncio.timeout(timeout):
            client = await _connect(attempt, parsed, timeout, allow_private)
            attempt.phase = "logging in"
            await client.login(parsed.username or "anonymous", parsed.password or "")
            attempt.phase = "uploading"
            final = await publish(_FTPFolders(client), parsed.path, bundle, token, progress)
    except Exception as exc:
        if client is not None:
            client.close()
        if progress and attempt.phase == "uploading":
            attempt.phase = progress[-1]
        return _failure(attempt, parsed, exc, timeout)
    # The folder is in place: a slow or rude goodbye must not turn that into a failure.
    try:
        with contextlib.suppress(aioftp.AIOFTPException, OSError, TimeoutError):
            await asyncio.wait_for(client.quit(), QUIT_TIMEOUT)
    finally:
        client.close()
    return attempt.ok(status_code=226, response=f"uploaded {final}")


async def _connect(
    attempt: Attempt, parsed: DestinationURL, io_timeout: float, allow_private: bool
) -> aioftp.Client:
    last_error: OSError | None = None
    for address in await checked_addresses(parsed.host, parsed.port, allow_private=allow_private):
        client = aioftp.Client(socket_timeout=io_timeout, connection_timeout=io_timeout)
        try:
            await client.connect(address, parsed.port)
        except OSError as exc:
            client.close()
            last_error = exc
            continue
        except BaseException:
            client.close()
            raise
        return client
    raise last_error or OSError(f"{parsed.host} has no address")


def _failure(
    attempt: Attempt, parsed: DestinationURL, exc: Exception, timeout: float
) -> SendResult:
    where = parsed.netloc_for_display
    if isinstance(exc, TimeoutError):
        return attempt.timed_out(timeout)
    if isinstance(exc, BlockedDestination):
        return attempt.failed(str(exc), permanent=True)
    if isinstance(exc, aioftp.StatusCodeError):
        code = exc.received_codes[-1] if exc.received_codes else None
        info = " ".join(exc.info) if isinstance(exc.info, list) else str(exc.info)
        status = int(code) if code is not None and str(code).isdigit() else None
        if code is not None and str(code) in _LOGIN_REFUSED:
            return attempt.failed(
                f"login refused: {code} {info}", permanent=True, status_code=status, response=info
            )
        # 5xx replies are permanent negative completions (RFC 959): permission, no space, …
        permanent = code is not None and str(code).startswith("5")
        return attempt.failed(
            f"server answered {code} {info}", permanent=permanent, status_code=status, response=info
        )
    if isinstance(exc, OSError | aioftp.AIOFTPException):
        return attempt.failed(f"cannot reach {where}: {describe(exc)}")
    return attempt.failed(f"unexpected error: {describe(exc)}")
