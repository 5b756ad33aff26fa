"""Destination URLs of the email, FTP and SFTP transports: parsed once, redacted always.

``scheme://user:password@host:port/path?name=value&…`` — user and password are
percent-decoded (write ``@`` as ``%40``, ``:`` as ``%3A`` and ``/`` as ``%2F`` inside them).
Unknown query parameters are refused, so a typo never silently changes behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

REDACTED = "***"
# Query parameters whose values are secrets (redacted like the password).
SECRET_PARAMS = frozenset({"passphrase"})
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class DestinationURL:
    scheme: str
    host: str  # a name or an address, without IPv6 brackets
    port: int
    username: str | None
    password: str | None = field(repr=False)
    path: str  # percent-decoded, always starting with "/"
    query: dict[str, list[str]] = field(repr=False)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    @property
    def secrets(self) -> list[str]:
        """Every secret this URL carries, for scrubbing error messages."""
        found = [self.password] if self.password else []
        for name in SECRET_PARAMS:
            found.extend(v for v in self.query.get(name, []) if v)
        return found

    @property
    def netloc_for_display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def redacted(self) -> str:
        return redact_parts(self)


def parse_destination_url(
    url: str,
    *,
    default_ports: dict[str, int],
    allowed_params: frozenset[str] | set[str],
) -> DestinationURL:
    """Parse and validate the generic parts; transports validate their own params."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the destination URL is empty")
    if any(ord(c) < 0x20 or c == "\x7f" for c in url) or " " in url:
        raise ValueError("the destination URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"cannot parse destination URL {redact(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in default_ports:
        expected = ", ".join(f"{s}://" for s in sorted(default_ports))
        raise ValueError(f"unsupported scheme {scheme or '(none)'!r}: expected {expected}")
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"the destination URL {redact(url)} has no host")
    if ":" not in host and not _HOST_RE.match(host):
        raise ValueError(f"invalid host name {host!r}")
    if port == 0:
        raise ValueError("the port must be between 1 and 65535")
    if parts.fragment:
        raise ValueError("the destination URL must not have a #fragment")
    query: dict[str, list[str]] = {}
    for name, value in query_pairs(parts.query):
        if name not in allowed_params:
            known = ", ".join(sorted(allowed_params)) or "none"
            raise ValueError(f"unknown parameter {name!r} in {scheme}:// URL (known: {known})")
        query.setdefault(name, []).append(value)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return DestinationURL(
        scheme=scheme,
        host=host,
        port=port or default_ports[scheme],
        username=username,
        password=password,
        path=unquote(parts.path) or "/",
        query=query,
    )


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``name=value`` pairs, percent-decoded; unlike form encoding, ``+`` stays ``+``
    (email addresses like ``ops+bugs@example.com`` and SSH fingerprints contain it)."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def redact_parts(parsed: DestinationURL) -> str:
    user = ""
    if parsed.username is not None:
        user = quote(parsed.username, safe="")
        if parsed.password is not None:
            user += ":" + REDACTED
        user += "@"
    query = _encode_query(
        [
            (name, REDACTED if name in SECRET_PARAMS else value)
            for name, values in parsed.query.items()
            for value in values
        ]
    )
    netloc = user + parsed.netloc_for_display
    return urlunsplit((parsed.scheme, netloc, quote(parsed.path), query, ""))


def _encode_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(n, safe='')}={quote(v, safe='@/:*+,')}" for n, v in pairs)


def redact(url: str) -> str:
    """The URL with its password and secret parameters replaced by ``***``; never raises."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        query = _encode_query(
            [
                (name, REDACTED if name in SECRET_PARAMS else value)
                for name, value in query_pairs(parts.query)
            ]
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except Exception:
        return "(unparseable URL)"


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (raw and percent-encoded) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, REDACTED)
    return text
