"""``POST /api/v1/reports``: report intake from widgets, apps and scripts."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fieldreport.ingest.accept import AcceptedReport, KeyRefused, accept_report, report_fields
from fieldreport.ingest.auth import app_state
from fieldreport.ingest.clientip import client_ip
from fieldreport.ingest.cors import cors_headers, preflight_response, request_origin
from fieldreport.ingest.errors import HTTPProblem, problem_response
from fieldreport.ingest.report_input import IncomingReport, parse_json, parse_multipart
from fieldreport.ingest.report_keys import authorize_report, refusal, report_keys
from fieldreport.ingest.shedding import shed_load
from fieldreport.storage.projects import Project, origin_known, project_by_key


@shed_load("reports")
async def create_report(request: Request) -> Response:
    """Submit a bug report.
    ---
    summary: Submit a bug report
    description: >
      multipart/form-data (or application/json with the screenshot as a base64 data URL).
      Authenticated by the project's public key in `X-Fieldreport-Key` or the form field `key`.
      A 201 means the report and its files are stored durably.
    tags: [ingest]
    security: [{publicKey: []}]
    requestBody:
      required: true
      content:
        multipart/form-data:
          schema: {$ref: '#/components/schemas/ReportForm'}
        application/json:
          schema: {$ref: '#/components/schemas/ReportJSON'}
    responses:
      201:
        description: Stored durably.
        content:
          application/json:
            schema: {$ref: '#/components/schemas/ReportCreated'}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
      413: {$ref: '#/components/responses/Problem'}
      415: {$ref: '#/components/responses/Problem'}
      503: {$ref: '#/components/responses/Problem'}
      507: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    limit = state.settings.max_report_bytes
    header_key = request.headers.get("x-fieldreport-key")
    extra_headers: dict[str, str] = {}
    try:
        if header_key is not None:
            # Authenticate before reading a possibly large body.
            project, key_hash = await authorize_report(request, header_key)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            incoming = await parse_multipart(request, limit)
        elif content_type == "application/json":
            incoming = await parse_json(request, limit)
        else:
            raise HTTPProblem(
                415,
                "send multipart/form-data (or application/x-www-form-urlencoded without files) "
                "or application/json",
                code="unsupported_media_type",
            )
        try:
            if header_key is None:
                project, key_hash = await authorize_report(request, incoming.key)
            extra_headers = cors_headers(request, project.origins)
            try:
                accepted = await _accept(request, project, incoming, key_hash)
            except KeyRefused as refused:
                # The cached lookup was stale: answer as a fresh one would have, CORS included.
                report_keys(request).forget(key_hash)
                extra_headers = {}
                raise refusal(request, refused.reason, project) from refused
        finally:
            incoming.close()
    except HTTPProblem as problem:
        response = problem_response(problem)
        response.headers.update(extra_headers or await _cors_for_error(request))
        return response
    body = {
        "reportid": accepted.reportid,
        "ticketnr": accepted.ticketnr,
        "ticketurl": accepted.ticketurl,
    }
    # The bytes JSONResponse renders (compact, UTF-8), without its json.dumps.
    return Response(
        _encode(body),
        201,
        {"Location": f"/api/v1/reports/{accepted.reportid}", **extra_headers},
        media_type="application/json",
    )


_encode = msgspec.json.Encoder().encode


async def _accept(
    request: Request, project: Project, incoming: IncomingReport, key_hash: str
) -> AcceptedReport:
    state = app_state(request)
    fields = report_fields(
        incoming,
        browser=request.headers.get("user-agent", ""),
        ipaddress=client_ip(request.scope, state.settings.trusted_proxy_networks),
        referer=request.headers.get("referer", ""),
    )
    origin = request_origin(request)
    return await accept_report(state, project, incoming, fields, key_hash=key_hash, origin=origin)


async def _cors_for_error(request: Request) -> dict[str, str]:
    """Let a browser read our error message when its origin belongs to the key's project."""
    origin = request_origin(request)
    if origin is None or origin == "invalid":
        return {}
    key = request.headers.get("x-fieldreport-key")
    async with app_state(request).db.read() as conn:
        if not key:
            # The widget sends its key as a form field (no preflight): let a browser on an
            # origin that some project allows read why its report was refused.
            known = await origin_known(conn, origin) or await origin_known(conn, "*")
            return cors_headers(request, [origin]) if known else {}
        project = await project_by_key(conn, key, "public")
    return cors_headers(request, project.origins) if project else {}


async def preflight(request: Request) -> Response:
    origin = request_origin(request)
    if origin is None or origin == "invalid":
        return preflight_response(request, False)
    async with app_state(request).db.read() as conn:
        known = await origin_known(conn, origin) or await origin_known(conn, "*")
    return preflight_response(request, known)


routes = [
    Route("/api/v1/reports", create_report, methods=["POST"]),
    Route("/api/v1/reports", preflight, methods=["OPTIONS"], include_in_schema=False),
]
