"""Where a report's files live in the blob store, and which report a key belongs to.

A report's files are named after the report, in one directory per project and month::

    reports/<project id>/<yyyy-mm>/<report id>.screenshot.<ext>
    reports/<project id>/<yyyy-mm>/<report id>.attachment-<n>

so storing a report creates no directory (only the first report of a month does).
Reports stored before this layout have a directory each, ``reports/<project id>/<report
id>/screenshot.<ext>``; their keys are stored with their rows (``report_files.blob_key``),
so they are read as before, and :func:`report_of_key` understands both layouts.
"""

from __future__ import annotations

import re
from datetime import datetime

REPORTS = "reports"

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_REPORT_KEY = re.compile(
    rf"^{REPORTS}/[0-9]+/(?:[0-9]{{4}}-[0-9]{{2}}/(?P<new>{_UUID})\.|(?P<old>{_UUID})/)[^/]+$"
)


def report_key_prefix(project_id: int, report_id: str, when: datetime) -> str:
    """The start of every key of a report received at ``when``: add ``.<file name>``."""
    return f"{REPORTS}/{project_id}/{when.year:04d}-{when.month:02d}/{report_id}"


def report_of_key(key: str) -> str | None:
    """The report id a report file's key names (either layout), or ``None`` for any other
    key (not a report file: left alone by the orphan sweep)."""
    match = _REPORT_KEY.match(key)
    if match is None:
        return None
    return match.group("new") or match.group("old")
