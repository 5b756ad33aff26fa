"""Checking destinations before they are stored, and showing them without their secrets."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from fieldreport.delivery.formats import FORMATS
from fieldreport.delivery.policy import DEFAULT_SCHEDULE, DEFAULT_TIMEOUT
from fieldreport.delivery.signing import check_secret
from fieldreport.delivery.ssrf import BlockedDestination, resolve_checked
from fieldreport.delivery.transports.http import check_http_url
from fieldreport.delivery.transports.registry import HTTP_SCHEMES, plugin_for
from fieldreport.delivery.urls import redact_url, scheme_of
from fieldreport.storage.destinations import Destination, NewDestination
from fieldreport.units import format_duration

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25, "smtps": 465, "ftp": 21, "sftp": 22}
RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding"}


def parse_header(text: str) -> tuple[str, str]:
    """``"Authorization: Bearer x"`` -> ("Authorization", "Bearer x")."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _HEADER_NAME.match(name):
        raise ValueError("a header looks like 'Name: value'")
    if "\r" in value or "\n" in value:
        raise ValueError(f"the value of header {name} contains a line break")
    if name.lower() in RESERVED_HEADERS or name.lower().startswith("webhook-"):
        raise ValueError(f"header {name} is set by fieldreport itself")
    return name, value


async def check_destination(new: NewDestination, *, allow_private: bool) -> None:
    """Refuse what cannot work: unknown schemes, bad URLs, misplaced options, and hosts that
    resolve to non-public addresses (unless allowed). ValueError messages carry no secrets."""
    url = new.url.strip()
    scheme = scheme_of(url)
    if scheme in HTTP_SCHEMES:
        check_http_url(url)
        if new.format not in FORMATS:
            raise ValueError(f"unknown format {new.format!r}; choose one of {', '.join(FORMATS)}")
        if new.secret and new.format == "multipart":
            raise ValueError(
                "--secret signs json and xml pushes (Standard Webhooks); multipart carries --token"
            )
    else:
        plugin_for(scheme).check_url(url)
        if new.format != "multipart":
            raise ValueError("--format applies to HTTP destinations only")
        if new.headers:
            raise ValueError("--header applies to HTTP destinations only")
        if new.secret:
            raise ValueError("--secret applies to HTTP destinations only")
    if new.secret:
        check_secret(new.secret)
    if not 0 < new.timeout <= 600:
        raise ValueError("--timeout must be between 1ms and 10m")
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ValueError("the destination URL has no host")
    try:
        await resolve_checked(
            host, parts.port or DEFAULT_PORTS.get(scheme, 0), allow_private=allow_private
        )
    except BlockedDestination as exc:
        raise ValueError(str(exc)) from None


def destination_dict(d: Destination, *, primary: bool) -> dict[str, Any]:
    """A destination as shown by the CLI and the API: secrets replaced by whether they are set."""
    return {
        "id": d.id,
        "project_id": d.project_id,
        "role": "primary" if primary else "backup",
        "position": d.position,
        "url": redact_url(d.url),
        "scheme": scheme_of(d.url),
        "format": d.format if scheme_of(d.url) in HTTP_SCHEMES else None,
        "token_set": bool(d.token),
        "secret_set": bool(d.secret),
        "headers": [name for name, _ in d.headers],
        "retry_schedule": [format_duration(x) for x in d.retry_schedule],
        "timeout": format_duration(d.timeout),
        "enabled": d.enabled,
        "disabled_reason": d.disabled_reason,
        "created_at": d.created_at.isoformat() if d.created_at else None,
    }


def default_new(url: str) -> NewDestination:
    return NewDestination(
        url=url, format="multipart", retry_schedule=list(DEFAULT_SCHEDULE), timeout=DEFAULT_TIMEOUT
    )
