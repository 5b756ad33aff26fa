"""Seed 000's HTTP-Push: a multipart/form-data POST, field for field.

``token``, ``file`` (the screenshot, with its content type and a safe filename), ``reportid``,
``ticketurl``, ``ticketnr``, ``subject``, ``browser``, ``ipaddress``, ``referer``,
``senderemail``, ``sendercomment``, ``additionalinfo``, one ``notelist[]`` part per note, and a
``backendlog`` JSON file part when the report's recording has backend events.
"""

from __future__ import annotations

import json

import aiohttp

from fieldreport.delivery.bundle import ReportBundle


def multipart_form(bundle: ReportBundle, token: str | None) -> aiohttp.FormData:
    # quote_fields=False: field names go out as-is (`notelist[]`, which PHP turns into an array).
    form = aiohttp.FormData(quote_fields=False, charset="utf-8", default_to_multipart=True)
    form.add_field("token", token or "")
    if bundle.screenshot is not None:
        form.add_field(
            "file",
            bundle.screenshot.data,
            filename=bundle.screenshot.filename,
            content_type=bundle.screenshot.content_type,
        )
    for name, value in bundle.fields().items():
        form.add_field(name, value)
    for note in bundle.notelist:
        form.add_field("notelist[]", note)
    if bundle.backend_events:
        form.add_field(
            "backendlog",
            json.dumps(bundle.backend_events, ensure_ascii=False).encode("utf-8"),
            filename="backendlog.json",
            content_type="application/json",
        )
    return form
