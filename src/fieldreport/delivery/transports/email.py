"""Email transport (``smtp://`` and ``smtps://``): the report as a readable HTML email.

``smtp://user:pass@host:587?to=ops@example.com&to=dev@example.com&from=bugs@example.com``

- ``smtp://`` (default port 25) upgrades with STARTTLS when the server offers it;
  ``starttls=require`` refuses to continue without it, ``starttls=off`` never upgrades.
- ``smtps://`` (default port 465) speaks TLS from the first byte.
- ``user:password@`` in the URL is used for SMTP AUTH (a user name alone only provides the
  default sender); the password is never sent over an unencrypted connection unless
  ``starttls=off`` says so explicitly.
- ``ca_file=/path/ca.pem`` trusts a private CA (or a self-signed server certificate) in
  addition to nothing else; certificates are always verified against the URL's host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl

import aiosmtplib

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.ssrf import BlockedDestination
from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.transports.connect import close_quietly, open_checked_socket
from fieldreport.delivery.transports.email_message import build_message
from fieldreport.delivery.transports.outcome import Attempt, describe
from fieldreport.delivery.transports.urls import DestinationURL, parse_destination_url

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
PARAMS = frozenset({"to", "from", "starttls", "ca_file"})
STARTTLS_MODES = ("auto", "require", "off")
QUIT_TIMEOUT = 2.0
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9.-]+")


def _parse(url: str) -> tuple[DestinationURL, list[str], str, str]:
    parsed = parse_destination_url(url, default_ports=DEFAULT_PORTS, allowed_params=PARAMS)
    if parsed.path not in ("", "/"):
        raise ValueError(f"{parsed.scheme}:// URLs take no path (got {parsed.path!r})")
    recipients: list[str] = []
    for value in parsed.params("to"):
        recipients.extend(part.strip() for part in value.split(",") if part.strip())
    if not recipients:
        raise ValueError(
            f"{parsed.scheme}:// URLs need at least one recipient: ?to=ops@example.com"
        )
    sender = parsed.param("from") or (
        parsed.username if parsed.username and "@" in parsed.username else None
    )
    if not sender:
        raise ValueError(
            f"{parsed.scheme}:// URLs need a sender: &from=bugs@example.com "
            "(or a user name that is an email address)"
        )
    for address in [*recipients, sender]:
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"invalid email address {address!r}")
    starttls = (parsed.param("starttls") or "auto").lower()
    if starttls not in STARTTLS_MODES:
        raise ValueError(f"starttls must be one of {', '.join(STARTTLS_MODES)} (got {starttls!r})")
    if parsed.scheme == "smtps" and parsed.param("starttls") is not None:
        raise ValueError("smtps:// uses TLS from the start; starttls= applies to smtp:// only")
    ca_file = parsed.param("ca_file")
    if ca_file is not None and not os.path.isabs(ca_file):
        raise ValueError(f"ca_file must be an absolute path (got {ca_file!r})")
    if parsed.password is not None and parsed.username is None:
        raise ValueError("a password needs a user name")
    return parsed, recipients, sender, starttls


def check_url(url: str) -> None:
    """Validate an ``smtp://``/``smtps://`` destination URL (raises ValueError)."""
    _parse(url)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=ca_file)


async def send(
    url: str,
    bundle: ReportBundle,
    *,
    token: str | None,
    timeout: float,  # noqa: ASYNC109 (the transport contract; enforced with asyncio.timeout)
    allow_private: bool,
) -> SendResult:
    """Email the report; never raises for a failed delivery."""
    try:
        parsed, recipients, sender, starttls = _parse(url)
    except ValueError as exc:
        return Attempt([], phase=None).failed(f"invalid destination: {exc}", permanent=True)
    attempt = Attempt(parsed.secrets)
    try:
        async with asyncio.timeout(timeout):
            client, answer = await _deliver(
                attempt, parsed, bundle, recipients, sender, starttls, token, timeout, allow_private
            )
    except Exception as exc:
        cert_error = untrusted_certificate(exc)
        if cert_error is None:
            return _failure(attempt, parsed, exc, timeout)
        return attempt.failed(
            f"the TLS certificate of {parsed.host} is not trusted: {cert_error.verify_message}",
            permanent=True,
        )
    # The server has accepted the message: from here on nothing may turn this into a failure
    # (a retry would send a duplicate), so the goodbye runs outside the deadline, bounded alone.
    attempt.phase = "QUIT"
    try:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit(timeout=QUIT_TIMEOUT)
    finally:
        if client.is_connected:
            client.close()
    return attempt.ok(status_code=250, response=answer)


def untrusted_certificate(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``exc`` (libraries wrap it), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _failure(
    attempt: Attempt, parsed: DestinationURL, exc: Exception, timeout: float
) -> SendResult:
    """Describe a failed send: permanent when retrying cannot help."""
    where = parsed.netloc_for_display
    if isinstance(exc, TimeoutError):  # includes aiosmtplib's timeouts
        return attempt.timed_out(timeout)
    if isinstance(exc, BlockedDestination):
        return attempt.failed(str(exc), permanent=True)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return attempt.failed(
            f"authentication refused: {exc.code} {exc.message}",
            permanent=True,
            status_code=exc.code,
            response=exc.message,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return attempt.failed(
            f"every recipient refused ({refused})",
            permanent=all(r.code >= 500 for r in exc.recipients),
            status_code=exc.recipients[0].code if exc.recipients else None,
            response=refused,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # sender refused, DATA, HELO, …
        return attempt.failed(
            f"server answered {exc.code} {exc.message}",
            permanent=exc.code >= 500,
            status_code=exc.code,
            response=exc.message,
        )
    if isinstance(exc, ConnectionError):  # refused, reset, disconnected (incl. aiosmtplib's)
        return attempt.failed(f"cannot reach {where}: {describe(exc)}")
    if isinstance(exc, aiosmtplib.SMTPException):
        # Refusals without a reply code: no STARTTLS, no AUTH, no common AUTH mechanism.
        return attempt.failed(describe(exc), permanent=True)
    if isinstance(exc, OSError):
        return attempt.failed(f"cannot reach {where}: {describe(exc)}")
    # A library error we did not foresee: transient, so nothing is lost.
    return attempt.failed(f"unexpected error: {describe(exc)}")


class _Refusal(aiosmtplib.SMTPException):
    """A refusal of ours (configuration vs. what the server offers); retrying cannot help."""


async def _deliver(
    attempt: Attempt,
    parsed: DestinationURL,
    bundle: ReportBundle,
    recipients: list[str],
    sender: str,
    starttls: str,
    token: str | None,
    io_timeout: float,
    allow_private: bool,
) -> tuple[aiosmtplib.SMTP, str]:
    """Connect, secure, log in and hand the message over; returns the still-open client
    and the server's answer to the message."""
    message = build_message(bundle, sender=sender, recipients=recipients, token=token)
    sock: socket.socket | None = await open_checked_socket(
        parsed.host, parsed.port, allow_private=allow_private
    )
    implicit = parsed.scheme == "smtps"
    client = aiosmtplib.SMTP(
        hostname=parsed.host,  # for TLS SNI and certificate verification
        sock=sock,
        timeout=io_timeout,
        use_tls=implicit,
        start_tls=False,  # decided below, once the server's EHLO is known
        tls_context=_tls_context(parsed.param("ca_file")),
        local_hostname=socket.gethostname() or "localhost",
    )
    try:
        attempt.phase = "greeting" if not implicit else "TLS handshake"
        await client.connect()
        sock = None  # owned by the client now
        attempt.phase = "EHLO"
        await client.ehlo()
        encrypted = implicit
        if not implicit and starttls != "off":
            if client.supports_extension("starttls"):
                attempt.phase = "STARTTLS"
                await client.starttls()
                encrypted = True
            elif starttls == "require":
                raise _Refusal("the server does not offer STARTTLS (starttls=require)")
        if parsed.username is not None and parsed.password is not None:
            if not encrypted and starttls != "off":
                raise _Refusal(
                    "the server does not offer STARTTLS; refusing to send the password "
                    "unencrypted (add starttls=off to allow it)"
                )
            attempt.phase = "AUTH"
            await client.login(parsed.username, parsed.password)
        attempt.phase = "sending"
        refused, answer = await client.send_message(message, sender=sender, recipients=recipients)
        if refused:
            answer += "; refused: " + "; ".join(
                f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in refused.items()
            )
        return client, answer
    except BaseException:
        close_quietly(sock)
        if client.is_connected:
            client.close()
        raise
