"""The ``json`` format: the whole report as one JSON document, signed by Standard Webhooks.

Files travel as signed, expiring download links to this server (``url`` + ``expires_at``), or
inline as base64 (``data``) when the destination asks for it (``#inline`` on its URL).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fieldreport.delivery.bundle import FileData, ReportBundle

EVENT_TYPE = "report.created"
LinkMaker = Callable[[str], str]  # file name (screenshot, attachment-N) -> URL


def _file(f: FileData, name: str, *, inline: bool, link: LinkMaker | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "filename": f.filename,
        "content_type": f.content_type,
        "size": len(f.data),
    }
    if inline or link is None:
        out["data"] = base64.b64encode(f.data).decode("ascii")
    else:
        out["url"] = link(name)
    return out


def report_document(
    bundle: ReportBundle,
    *,
    token: str | None,
    inline: bool,
    link: LinkMaker | None,
    expires_at: datetime | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if token:
        data["token"] = token
    data.update(
        {
            "reportid": bundle.reportid,
            "ticketnr": bundle.ticketnr,
            "ticketurl": bundle.ticketurl,
            "project": bundle.project,
            "created_at": bundle.created_at,
            "subject": bundle.subject,
            "browser": bundle.browser,
            "ipaddress": bundle.ipaddress,
            "referer": bundle.referer,
            "senderemail": bundle.senderemail,
            "sendercomment": bundle.sendercomment,
            "additionalinfo": bundle.additionalinfo,
            "notelist": list(bundle.notelist),
            "recording": bundle.recording,
            "screenshot": _file(bundle.screenshot, "screenshot", inline=inline, link=link)
            if bundle.screenshot
            else None,
            "attachments": [
                _file(a, f"attachment-{i + 1}", inline=inline, link=link)
                for i, a in enumerate(bundle.attachments)
            ],
            "files_expire_at": expires_at.isoformat() if expires_at and not inline else None,
            "backend_events": list(bundle.backend_events),
        }
    )
    return {"type": EVENT_TYPE, "timestamp": datetime.now(UTC).isoformat(), "data": data}


def json_body(
    bundle: ReportBundle,
    *,
    token: str | None,
    inline: bool,
    link: LinkMaker | None = None,
    expires_at: datetime | None = None,
) -> bytes:
    doc = report_document(bundle, token=token, inline=inline, link=link, expires_at=expires_at)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
