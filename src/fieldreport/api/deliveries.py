"""Deliveries through the API (secret key): list, show with every attempt, redeliver; and the
signed, expiring file links that JSON pushes carry (no key: the signature is the credential)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fieldreport.api.query import limit_param
from fieldreport.delivery.links import link_key
from fieldreport.delivery.signing import link_valid
from fieldreport.delivery.views import attempt_dict, delivery_dict
from fieldreport.ingest.auth import app_state, project_for_secret_key
from fieldreport.ingest.errors import HTTPProblem, not_found
from fieldreport.openapi import COMPONENTS
from fieldreport.storage.deliveries import (
    STATUSES,
    Delivery,
    attempts_of,
    dead_ids,
    get_delivery,
    list_deliveries,
    requeue,
)
from fieldreport.storage.reports import get_report
from fieldreport.storage.schema.base import utcnow
from fieldreport.units import parse_duration

_STR: dict[str, Any] = {"type": "string"}
_NSTR: dict[str, Any] = {"type": ["string", "null"]}
_NINT: dict[str, Any] = {"type": ["integer", "null"]}
COMPONENTS["schemas"].update(
    {
        "Delivery": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "reportid": _STR,
                "ticketnr": {"type": "integer"},
                "project": _STR,
                "status": {"type": "string", "enum": list(STATUSES)},
                "destination_id": _NINT,
                "attempts": {"type": "integer"},
                "total_attempts": {"type": "integer"},
                "next_attempt_at": _NSTR,
                "in_flight": {"type": "boolean"},
                "last_status_code": _NINT,
                "last_error": _NSTR,
                "created_at": _STR,
                "updated_at": _STR,
                "delivered_at": _NSTR,
            },
        },
        "DeliveryAttempt": {
            "type": "object",
            "properties": {
                "started_at": _STR,
                "destination": _STR,
                "duration_ms": _NINT,
                "status_code": _NINT,
                "response_excerpt": _STR,
                "error": _NSTR,
                "outcome": {
                    "type": "string",
                    "enum": ["in_flight", "delivered", "retry", "next", "dead", "abandoned"],
                },
            },
        },
    }
)


async def _owned(request: Request) -> Delivery:
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    try:
        delivery_id = int(request.path_params["id"])
    except ValueError:
        raise not_found("no such delivery") from None
    async with state.db.read() as conn:
        found = await get_delivery(conn, delivery_id)
    if found is None or found.project_id != project.id:
        raise not_found(f"no delivery {delivery_id} in this project")
    return found


async def list_project_deliveries(request: Request) -> Response:
    """List the project's deliveries, newest first.
    ---
    summary: List deliveries
    tags: [deliveries]
    security: [{secretKey: []}]
    parameters:
      - {name: status, in: query, schema: {type: string, enum: [pending, failed, delivered, dead]}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
    responses:
      200:
        description: Deliveries.
        content:
          application/json:
            schema:
              type: object
              properties:
                deliveries: {type: array, items: {$ref: '#/components/schemas/Delivery'}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise HTTPProblem(400, f"`status` must be one of {', '.join(STATUSES)}")
    limit = limit_param(request, default=100, maximum=1000)
    async with state.db.read() as conn:
        found = await list_deliveries(conn, project_id=project.id, status=status, limit=limit)
    return JSONResponse({"deliveries": [delivery_dict(d) for d in found]})


async def show_delivery(request: Request) -> Response:
    """Show a delivery and every attempt.
    ---
    summary: Show a delivery
    tags: [deliveries]
    security: [{secretKey: []}]
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer}}
    responses:
      200:
        description: The delivery with `attempts_log`.
        content:
          application/json:
            schema:
              allOf:
                - {$ref: '#/components/schemas/Delivery'}
                - type: object
                  properties:
                    attempts_log:
                      type: array
                      items: {$ref: '#/components/schemas/DeliveryAttempt'}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    delivery = await _owned(request)
    async with app_state(request).db.read() as conn:
        attempts = await attempts_of(conn, delivery.id)
    data = delivery_dict(delivery)
    data["attempts_log"] = [attempt_dict(a) for a in attempts]
    return JSONResponse(data)


async def retry_delivery(request: Request) -> Response:
    """Deliver again, from the start of the project's chain.
    ---
    summary: Redeliver
    tags: [deliveries]
    security: [{secretKey: []}]
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer}}
    responses:
      202:
        description: Queued again.
        content: {application/json: {schema: {$ref: '#/components/schemas/Delivery'}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      409: {$ref: '#/components/responses/Problem'}
    """
    delivery = await _owned(request)
    state = app_state(request)
    async with state.db.write() as conn:
        queued = await requeue(conn, delivery.id, utcnow())
        found = await get_delivery(conn, delivery.id)
    if not queued or found is None:
        raise HTTPProblem(409, "the project has no enabled destination", code="no_destination")
    state.delivery_wake.set()
    return JSONResponse(delivery_dict(found), status_code=202)


async def retry_dead(request: Request) -> Response:
    """Deliver every dead delivery of the project again (optionally only recent ones).
    ---
    summary: Redeliver dead deliveries
    tags: [deliveries]
    security: [{secretKey: []}]
    parameters:
      - {name: since, in: query, schema: {type: string},
         description: "e.g. 2h: only those that died within"}
    responses:
      202:
        description: How many were queued again.
        content: {application/json: {schema: {type: object, properties: {queued: {type: integer}}}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    since_text = request.query_params.get("since")
    since = None
    now = utcnow()
    if since_text:
        try:
            since = now - timedelta(seconds=parse_duration(since_text))
        except ValueError as exc:
            raise HTTPProblem(400, str(exc)) from None
    async with state.db.read() as conn:
        ids = await dead_ids(conn, since=since, project_id=project.id)
    queued = 0
    for start in range(0, len(ids), 200):
        async with state.db.write() as conn:
            for one in ids[start : start + 200]:
                queued += await requeue(conn, one, now)
    if queued:
        state.delivery_wake.set()
    return JSONResponse({"queued": queued}, status_code=202)


async def signed_file(request: Request) -> Response:
    """Download a report's file through a signed, expiring link from a JSON push.
    ---
    summary: Download a pushed file (signed link)
    tags: [deliveries]
    parameters:
      - {name: reportid, in: path, required: true, schema: {type: string}}
      - {name: name, in: path, required: true, schema: {type: string},
         description: "screenshot or attachment-N"}
      - {name: expires, in: query, required: true, schema: {type: integer}}
      - {name: sig, in: query, required: true, schema: {type: string}}
    responses:
      200: {description: The file.}
      403: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    report_id = request.path_params["reportid"]
    name = request.path_params["name"]
    key = await link_key(state)
    expires = request.query_params.get("expires", "")
    sig = request.query_params.get("sig", "")
    if not link_valid(key, report_id, name, expires, sig, time.time()):
        raise HTTPProblem(403, "this link is invalid or has expired", code="forbidden")
    async with state.db.read() as conn:
        report = await get_report(conn, report_id)
    if report is None:
        raise not_found("the report no longer exists")
    if name == "screenshot":
        stored = report.screenshot
    elif name.startswith("attachment-") and name[11:].isdigit():
        n = int(name[11:])
        stored = next((a for a in report.attachments if a.position + 1 == n), None)
    else:
        stored = None
    if stored is None:
        raise not_found("no such file on this report")
    return StreamingResponse(
        state.blobs.stream(stored.blob_key),
        media_type=stored.content_type,
        headers={
            "Content-Length": str(stored.size),
            "Content-Disposition": f'attachment; filename="{stored.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )


routes = [
    Route("/api/v1/deliveries", list_project_deliveries, methods=["GET"]),
    Route("/api/v1/deliveries/retry-dead", retry_dead, methods=["POST"]),
    Route("/api/v1/deliveries/{id:int}", show_delivery, methods=["GET"]),
    Route("/api/v1/deliveries/{id:int}/retry", retry_delivery, methods=["POST"]),
    Route("/api/v1/delivery-files/{reportid}/{name}", signed_file, methods=["GET"]),
]
