"""Everything a transport needs to push one report, loaded once per delivery attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload


# Not frozen (nor the bundle): a frozen dataclass sets each field in __init__ through
# object.__setattr__, ~600 instructions a field, and a bundle is built per delivery. Treat
# them as read-only all the same (dataclasses.replace makes a changed copy).
@dataclass
class FileData:
    filename: str  # a safe display name (never a path on our side)
    content_type: str
    data: bytes


class _IsoText:
    """A field given as ISO 8601 text, or as a datetime made into that text
    (``isoformat()``) when first read: the worker builds a bundle per delivery, and most
    formats (multipart, the benchmark's) never read the report's time."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _IsoText: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> str: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> str | _IsoText:
        if obj is None:
            # No default for the dataclass field (dataclasses reads the class attribute).
            raise AttributeError(self._key[1:])
        value: str | datetime = obj.__dict__[self._key]
        if isinstance(value, datetime):
            text: str = value.isoformat()
            obj.__dict__[self._key] = text
            return text
        return value

    def __set__(self, obj: object, value: str | datetime) -> None:
        obj.__dict__[self._key] = value


@dataclass
class ReportBundle:
    """A report as pushed: seed 000's fields, its files, its rendered PDF, backend events."""

    reportid: str
    ticketnr: int
    ticketurl: str
    project: str
    subject: str
    browser: str
    ipaddress: str
    referer: str
    senderemail: str
    sendercomment: str
    additionalinfo: str
    notelist: list[str]
    recording: str | None
    screenshot: FileData | None
    # ISO 8601, UTC (given as text or as a datetime). Required: the descriptor is no default
    # (placed last of the required fields only because a type checker takes it for one).
    created_at: _IsoText = _IsoText()
    attachments: list[FileData] = field(default_factory=list)
    # The rendered report document (PDF); filled lazily by the worker when a format needs it.
    pdf: bytes | None = None
    # The recording's backend events (full-stack API), oldest first, as JSON-ready dicts.
    backend_events: list[dict[str, Any]] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """Seed 000's scalar fields, in the seed's order (without token and file)."""
        return {
            "reportid": self.reportid,
            "ticketurl": self.ticketurl,
            "ticketnr": str(self.ticketnr),
            "subject": self.subject,
            "browser": self.browser,
            "ipaddress": self.ipaddress,
            "referer": self.referer,
            "senderemail": self.senderemail,
            "sendercomment": self.sendercomment,
            "additionalinfo": self.additionalinfo,
        }
