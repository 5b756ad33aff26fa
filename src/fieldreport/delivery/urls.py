"""Destination URLs: redaction (secrets never printed or logged) and parsing helpers."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
SENSITIVE_PARAMS = {
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "secret",
    "sig",
    "signature",
    "key",
    "api_key",
    "apikey",
    "access_token",
    "auth",
    "code",
}


@functools.lru_cache(maxsize=1024)
def scheme_of(url: str) -> str:
    """The URL's scheme, lower case (cached: the worker asks it of every delivery)."""
    return urlsplit(url.strip()).scheme.lower()


def redact_url(url: str) -> str:
    """``https://user:pw@host/p?token=x`` -> ``https://user:***@host/p?token=***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username is not None:
        user = parts.username + (f":{REDACTED}" if parts.password is not None else "")
        netloc = f"{user}@{netloc}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in SENSITIVE_PARAMS else v) for k, v in pairs], safe="*@/"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Remove every occurrence of the given secrets from a text (errors, response excerpts)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, REDACTED)
    return text


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL (password, sensitive query values), for :func:`scrub`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password] if parts.password else []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k.lower() in SENSITIVE_PARAMS and v:
            found.append(v)
    return found
