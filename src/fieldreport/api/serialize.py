"""JSON views of stored objects, shared by the API, the CLI and the JSON push format."""

from __future__ import annotations

from typing import Any

from fieldreport.storage.projects import Project
from fieldreport.storage.reports import Report, StoredFile


def file_dict(report_id: str, f: StoredFile) -> dict[str, Any]:
    path = (
        f"/api/v1/reports/{report_id}/screenshot"
        if f.role == "screenshot"
        else f"/api/v1/reports/{report_id}/attachments/{f.position + 1}"
    )
    return {
        "filename": f.filename,
        "content_type": f.content_type,
        "size": f.size,
        "sha256": f.sha256,
        "url": path,
    }


def report_dict(report: Report, public_url: str) -> dict[str, Any]:
    fields = report.fields
    shot = report.screenshot
    return {
        "reportid": report.id,
        "project": report.project_name,
        "project_id": report.project_id,
        "ticketnr": report.ticketnr,
        "ticketurl": f"{public_url}/reports/{report.id}",
        "created_at": report.created_at.isoformat(),
        "subject": fields.subject,
        "browser": fields.browser,
        "ipaddress": fields.ipaddress,
        "referer": fields.referer,
        "senderemail": fields.senderemail,
        "sendercomment": fields.sendercomment,
        "additionalinfo": fields.additionalinfo,
        "notelist": list(fields.notelist),
        "recording": fields.recording,
        "screenshot": file_dict(report.id, shot) if shot else None,
        "attachments": [file_dict(report.id, a) for a in report.attachments],
    }


def project_dict(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "public_key_hint": project.public_key_hint + "…",
        "secret_key_hint": project.secret_key_hint + "…",
        "origins": list(project.origins),
        "created_at": project.created_at.isoformat(),
    }
