"""Everything a transport needs to push one report, loaded once per delivery attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# Not frozen (nor the bundle): a frozen dataclass sets each field in __init__ through
# object.__setattr__, ~600 instructions a field, and a bundle is built per delivery. Treat
# them as read-only all the same (dataclasses.replace makes a changed copy).
@dataclass
class FileData:
    filename: str  # a safe display name (never a path on our side)
    content_type: str
    data: bytes


@dataclass
class ReportBundle:
    """A report as pushed: seed 000's fields, its files, its rendered PDF, backend events."""

    reportid: str
    ticketnr: int
    ticketurl: str
    project: str
    created_at: str  # ISO 8601, UTC
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
