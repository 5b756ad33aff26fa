"""Which project or report a logged-in user may open (404 for anything else)."""

from __future__ import annotations

from starlette.requests import Request

from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import LoginSession, can_see_project
from fieldreport.storage.projects import Project, get_project
from fieldreport.storage.reports import Report, get_report


class NotVisible(Exception):
    """The object does not exist, or the user may not see it (answered alike: 404)."""


async def visible_project(request: Request, login: LoginSession) -> Project:
    raw = request.path_params.get("project_id")
    if not isinstance(raw, int):
        raise NotVisible
    async with app_state(request).db.read() as conn:
        project = await get_project(conn, raw)
        if project is None or not await can_see_project(conn, login.user, project.id):
            raise NotVisible
    return project


async def visible_report(request: Request, login: LoginSession) -> Report:
    report_id = str(request.path_params.get("report_id", ""))
    if len(report_id) > 64:
        raise NotVisible
    async with app_state(request).db.read() as conn:
        report = await get_report(conn, report_id)
        if report is None or not await can_see_project(conn, login.user, report.project_id):
            raise NotVisible
    return report
