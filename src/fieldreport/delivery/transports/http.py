"""The HTTP(S) transport: one shared aiohttp session, SSRF-checked on every send,
redirects never followed, every outcome described as a :class:`SendResult`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict

from fieldreport import __version__
from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.formats.jsonbody import LinkMaker, json_body
from fieldreport.delivery.formats.multipart import multipart_form
from fieldreport.delivery.policy import classify_http_status, parse_retry_after
from fieldreport.delivery.signing import message_id, webhook_headers
from fieldreport.delivery.ssrf import BlockedDestination, checked_literal, guarded_connector
from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.urls import scrub, url_secrets
from fieldreport.storage.destinations import Destination

EXCERPT_BYTES = 1024
USER_AGENT = f"fieldreport/{__version__} (+https://github.com/fieldreport/fieldreport)"
INLINE_FRAGMENT = "inline"


def split_target(url: str) -> tuple[str, bool]:
    """The URL to POST to (without fragment) and whether files go inline (``#inline``)."""
    parts = urlsplit(url)
    inline = parts.fragment.lower() == INLINE_FRAGMENT
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")), inline


def check_http_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an HTTP destination looks like https://host/path")
    if parts.fragment and parts.fragment.lower() != INLINE_FRAGMENT:
        raise ValueError("the only URL fragment understood is #inline (JSON files inline)")
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError as exc:
        raise ValueError(f"invalid port in destination URL: {exc}") from None


class HttpTransport:
    def __init__(self, *, allow_private: bool, limit: int = 256) -> None:
        self.allow_private = allow_private
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Only close() closes the session, and it forgets it: no ``closed`` check per send
        # (three Python-level property calls through aiohttp's session and connector).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=guarded_connector(
                    allow_private=self.allow_private, limit=self._limit, limit_per_host=0
                ),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(
        self,
        dest: Destination,
        bundle: ReportBundle,
        *,
        link: LinkMaker | None = None,
        expires_at: datetime | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SendResult:
        started = time.perf_counter()
        target = _target(dest.url)
        secrets = [dest.token, dest.secret, *target.secrets]
        if dest.headers:  # no generator per send for the common case, none
            secrets += [v for _, v in dest.headers]
        host, inline = target.host, target.inline
        if target.literal:
            # aiohttp does not resolve literal IPs, so check them here; names are checked by
            # the guarded resolver at connection time (after DNS, so rebinding cannot pass).
            refused = _literal_refused(host, self.allow_private)
            if refused is not None:
                return _failed(refused, started, secrets, permanent=True)

        # Case-insensitive: a destination's --header replaces ours whatever its spelling.
        headers: CIMultiDict[str] = CIMultiDict()
        data: Any
        if dest.format == "json":
            data = json_body(
                bundle, token=dest.token, inline=inline, link=link, expires_at=expires_at
            )
            headers["Content-Type"] = "application/json"
            headers.update(webhook_headers(dest.secret, message_id(bundle.reportid), data, clock()))
        elif dest.format == "xml":
            from fieldreport.delivery.formats.xml import xml_body

            data = xml_body(bundle, token=dest.token)
            headers["Content-Type"] = "application/xml; charset=utf-8"
            headers.update(webhook_headers(dest.secret, message_id(bundle.reportid), data, clock()))
        else:
            form = multipart_form(bundle, dest.token)
            data = form.data
            headers["Content-Type"] = form.content_type
            headers["webhook-id"] = message_id(bundle.reportid)
        for name, value in dest.headers:
            headers[name] = value
        try:
            async with (self._session or self._client()).post(
                target.url,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=_timeout(dest.timeout),
            ) as resp:
                excerpt_bytes = await resp.content.read(EXCERPT_BYTES)
                status = resp.status
                location = resp.headers.get("Location")
                header = resp.headers.get("Retry-After")
                retry_after = parse_retry_after(header, datetime.now(UTC)) if header else None
        except TimeoutError:
            return _failed(f"timed out after {dest.timeout:g}s", started, secrets)
        except BlockedDestination as exc:
            return _failed(str(exc), started, secrets, permanent=True)
        except aiohttp.ClientConnectorError as exc:
            cause = exc.os_error
            if isinstance(cause, BlockedDestination):
                return _failed(str(cause), started, secrets, permanent=True)
            return _failed(f"cannot connect to {host}: {cause.strerror or cause}", started, secrets)
        except aiohttp.ClientError as exc:
            return _failed(f"{type(exc).__name__}: {exc}", started, secrets)
        except OSError as exc:
            return _failed(f"network error: {exc}", started, secrets)
        ok, permanent = classify_http_status(status)
        excerpt = scrub(excerpt_bytes.decode("utf-8", "replace"), secrets)
        error = None
        if not ok:
            error = f"HTTP {status}"
            if 300 <= status < 400:
                error += f": redirect to {location or '?'} not followed"
        # Positional, in the fields' order (keyword arguments cost ~2x as much, per send).
        return SendResult(
            ok, _elapsed_ms(started), status, excerpt, scrub(error, secrets) if error else None,
            retry_after if status in (429, 503) else None, permanent,
        )  # fmt: skip


# No closures per send: they and their cells lived as long as the request, one more set of
# young objects for the garbage collector to walk for every delivery in flight.
def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _failed(
    error: str, started: float, secrets: list[str | None], *, permanent: bool = False
) -> SendResult:
    return SendResult(
        ok=False, duration_ms=_elapsed_ms(started), error=scrub(error, secrets), permanent=permanent
    )


# What a send derives from a destination's URL, the SSRF verdict on a literal address and the
# request timeout are the same for every report sent there: worked out once per value instead
# of per send (URL parsing, the address check and the timeout object were ~35 µs a send).


@dataclass(frozen=True, slots=True)
class _Target:
    url: str  # what is POSTed to (no fragment)
    inline: bool  # #inline: JSON files inline
    host: str
    literal: bool  # the host is an IP address
    secrets: tuple[str, ...]  # the URL's secret parts, scrubbed from errors and excerpts


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    post_to, inline = split_target(url)
    host = urlsplit(post_to).hostname or ""
    literal = checked_literal(host, allow_private=True) is not None
    return _Target(post_to, inline, host, literal, tuple(url_secrets(url)))


@functools.lru_cache(maxsize=1024)
def _literal_refused(host: str, allow_private: bool) -> str | None:
    """Why a literal-address host is refused (:func:`~fieldreport.delivery.ssrf.checked_literal`),
    or None: the same answer for the same address, whenever asked."""
    try:
        checked_literal(host, allow_private=allow_private)
    except BlockedDestination as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=64)
def _timeout(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)
