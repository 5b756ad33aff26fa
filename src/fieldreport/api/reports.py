"""Reading reports: ``GET /api/v1/reports`` and ``GET /api/v1/reports/{reportid}`` (secret key)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fieldreport.api.query import int_param, limit_param
from fieldreport.api.serialize import report_dict
from fieldreport.ingest.auth import app_state, project_for_listing, project_for_secret_key
from fieldreport.ingest.errors import not_found
from fieldreport.storage.reports import Report, StoredFile, get_report, list_reports


async def _owned_report(request: Request) -> Report:
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    report_id = request.path_params["reportid"]
    try:
        uuid.UUID(report_id)
    except ValueError as exc:
        raise not_found(f"no report {report_id!r}") from exc
    async with state.db.read() as conn:
        report = await get_report(conn, report_id)
    if report is None or report.project_id != project.id:
        raise not_found(f"no report {report_id} in this project")
    return report


async def read_report(request: Request) -> Response:
    """Read one report.
    ---
    summary: Read one report
    tags: [reports]
    security: [{secretKey: []}]
    parameters:
      - {name: reportid, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200:
        description: The report.
        content: {application/json: {schema: {$ref: '#/components/schemas/Report'}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    report = await _owned_report(request)
    return JSONResponse(report_dict(report, app_state(request).public_url))


async def list_project_reports(request: Request) -> Response:
    """List the project's reports, newest first.
    ---
    summary: List reports
    tags: [reports]
    security: [{secretKey: []}]
    parameters:
      - {name: project, in: query, required: false, schema: {type: string},
         description: "Project name or id; must be the key's project."}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 500}}
      - {name: before, in: query, required: false, schema: {type: integer, minimum: 1},
         description: "Only reports with a smaller ticketnr (for paging)."}
    responses:
      200:
        description: A page of reports.
        content: {application/json: {schema: {$ref: '#/components/schemas/ReportList'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_listing(state, request)
    limit = limit_param(request, default=50, maximum=500)
    before = int_param(request, "before", minimum=1)
    if before is not None:
        before = min(before, 2**31 - 1)  # past any ticket number (an INTEGER column)
    async with state.db.read() as conn:
        page = await list_reports(conn, project_id=project.id, limit=limit, before_ticketnr=before)
    items = [report_dict(r, state.public_url) for r in page]
    next_before = page[-1].ticketnr if len(page) == limit else None
    return JSONResponse({"reports": items, "next_before": next_before})


async def _download(request: Request, stored: StoredFile | None) -> Response:
    if stored is None:
        raise not_found("no such file on this report")
    blobs = app_state(request).blobs
    return StreamingResponse(
        blobs.stream(stored.blob_key),
        media_type=stored.content_type,
        headers={
            "Content-Length": str(stored.size),
            "Content-Disposition": f'attachment; filename="{stored.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        },
    )


async def download_screenshot(request: Request) -> Response:
    """Download the report's screenshot.
    ---
    summary: Download the screenshot
    tags: [reports]
    security: [{secretKey: []}]
    parameters:
      - {name: reportid, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200: {description: The image., content: {image/png: {}, image/jpeg: {}, image/webp: {}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    report = await _owned_report(request)
    return await _download(request, report.screenshot)


async def download_attachment(request: Request) -> Response:
    """Download an attachment (numbered from 1).
    ---
    summary: Download an attachment
    tags: [reports]
    security: [{secretKey: []}]
    parameters:
      - {name: reportid, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: n, in: path, required: true, schema: {type: integer, minimum: 1}}
    responses:
      200: {description: The file., content: {application/octet-stream: {}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    report = await _owned_report(request)
    n = request.path_params["n"]
    found = next((a for a in report.attachments if a.position + 1 == n), None)
    return await _download(request, found)


routes = [
    Route("/api/v1/reports", list_project_reports, methods=["GET"]),
    Route("/api/v1/reports/{reportid}", read_report, methods=["GET"]),
    Route("/api/v1/reports/{reportid}/screenshot", download_screenshot, methods=["GET"]),
    Route("/api/v1/reports/{reportid}/attachments/{n:int}", download_attachment, methods=["GET"]),
]
