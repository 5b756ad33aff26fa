"""The reports list (search, dates, pages), a report's detail page and its files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fieldreport.dashboard.access import NotVisible, visible_project, visible_report
from fieldreport.dashboard.auth import page
from fieldreport.dashboard.jsontree import parse_json
from fieldreport.dashboard.render import render
from fieldreport.dashboard.useragent import parse_agent
from fieldreport.dashboard.views_deliveries import report_deliveries
from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import LoginSession
from fieldreport.storage.delivery_stats import delivery_status_of
from fieldreport.storage.report_search import DELIVERY_FILTERS, search_reports
from fieldreport.storage.reports import StoredFile
from fieldreport.storage.sessions import get_session

PER_PAGE = 25
REPORT_NOTICES = {
    "redelivery": "The report is queued for delivery again.",
    "no-destination": "Not queued: the project has no enabled destination.",
}


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@page()
async def reports_page(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    params = request.query_params
    q = params.get("q", "").strip()[:200]
    since_day, until_day = _day(params.get("from", "")), _day(params.get("to", ""))
    delivery = params.get("delivery", "")
    delivery = delivery if delivery in DELIVERY_FILTERS else ""
    try:
        page_no = max(1, min(100000, int(params.get("page", "1"))))
    except ValueError:
        page_no = 1
    async with app_state(request).db.read() as conn:
        found = await search_reports(
            conn,
            project.id,
            q=q,
            since=_start(since_day) if since_day else None,
            until=_start(until_day) + timedelta(days=1) if until_day else None,
            delivery=delivery or None,
            page=page_no,
            per_page=PER_PAGE,
        )
        statuses = await delivery_status_of(conn, [r.id for r in found.reports])
    kept = {
        k: v
        for k, v in {
            "q": q,
            "from": since_day.isoformat() if since_day else "",
            "to": until_day.isoformat() if until_day else "",
            "delivery": delivery,
        }.items()
        if v
    }

    def page_url(n: int) -> str:
        return f"?{urlencode({**kept, 'page': n})}"

    rows = [
        {"report": r, "agent": parse_agent(r.fields.browser), "delivery": statuses.get(r.id)}
        for r in found.reports
    ]
    return render(
        request,
        "reports.html",
        {
            "project": project,
            "found": found,
            "rows": rows,
            "q": q,
            "since": kept.get("from", ""),
            "until": kept.get("to", ""),
            "delivery": delivery,
            "filtered": bool(kept),
            "prev_url": page_url(found.page - 1) if found.page > 1 else None,
            "next_url": page_url(found.page + 1) if found.page < found.pages else None,
        },
    )


def _safe_link(url: str) -> str | None:
    """Only http(s) page URLs become links (never javascript: and friends)."""
    return url if urlsplit(url).scheme in ("http", "https") else None


@page()
async def report_page(request: Request, login: LoginSession) -> Response:
    report = await visible_report(request, login)
    fields = report.fields
    is_json, info = parse_json(fields.additionalinfo)
    deliveries = await report_deliveries(request, report.id)
    session_url = None
    if fields.recording:
        async with app_state(request).db.read() as conn:
            session = await get_session(conn, fields.recording)
        if session is not None and session.project_id == report.project_id:
            session_url = f"/sessions/{session.id}"
    return render(
        request,
        "report.html",
        {
            "report": report,
            "f": fields,
            "agent": parse_agent(fields.browser),
            "info_is_json": is_json,
            "info": info,
            "page_link": _safe_link(fields.referer),
            "deliveries": deliveries,
            "pdf_url": f"/reports/{report.id}/report.pdf",
            "session_url": session_url,
            "notice": REPORT_NOTICES.get(request.query_params.get("notice", ""), ""),
        },
    )


def _download(request: Request, stored: StoredFile, *, inline: bool) -> Response:
    # Screenshots were checked to be images when they came in and may show inline;
    # anything else is served as an opaque download so it cannot run in our origin.
    media = stored.content_type if inline else "application/octet-stream"
    name = stored.filename.replace('"', "").replace("\\", "")
    disposition = "inline" if inline else "attachment"
    return StreamingResponse(
        app_state(request).blobs.stream(stored.blob_key),
        media_type=media,
        headers={
            "Content-Length": str(stored.size),
            "Content-Disposition": f'{disposition}; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600",
        },
    )


@page()
async def screenshot(request: Request, login: LoginSession) -> Response:
    report = await visible_report(request, login)
    shot = report.screenshot
    if shot is None:
        raise NotVisible
    return _download(request, shot, inline=True)


@page()
async def attachment(request: Request, login: LoginSession) -> Response:
    report = await visible_report(request, login)
    n = int(request.path_params["n"])
    files = report.attachments
    if not 1 <= n <= len(files):
        raise NotVisible
    return _download(request, files[n - 1], inline=False)


routes = [
    Route(
        "/projects/{project_id:int}/reports", reports_page, methods=["GET"], include_in_schema=False
    ),
    Route("/reports/{report_id}", report_page, methods=["GET"], include_in_schema=False),
    Route("/reports/{report_id}/screenshot", screenshot, methods=["GET"], include_in_schema=False),
    Route(
        "/reports/{report_id}/attachments/{n:int}",
        attachment,
        methods=["GET"],
        include_in_schema=False,
    ),
]
