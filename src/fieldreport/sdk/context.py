"""The recording of the request being served, carried in a context variable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar

# What the BugReplay-style extension and fieldreport's recorder add to recorded requests.
HEADERS = ("br-recording-uuid", "x-fieldreport-recording")
MAX_RECORDING = 64

current_recording: ContextVar[str | None] = ContextVar("fieldreport_recording", default=None)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_RECORDING or not value.isprintable():
        return None
    return value


def recording_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The recording UUID from raw ASGI headers (lower-case names), or None."""
    found: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        if key in HEADERS and key not in found:
            found[key] = value.decode("latin-1")
    for header in HEADERS:
        cleaned = _clean(found.get(header))
        if cleaned:
            return cleaned
    return None


def recording_from_environ(environ: Mapping[str, object]) -> str | None:
    """The recording UUID from a WSGI environ, or None."""
    for header in HEADERS:
        value = environ.get("HTTP_" + header.upper().replace("-", "_"))
        cleaned = _clean(value if isinstance(value, str) else None)
        if cleaned:
            return cleaned
    return None


def get_recording() -> str | None:
    """The recording of the request being served (None outside recorded requests)."""
    return current_recording.get()
