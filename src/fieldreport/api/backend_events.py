"""``GET /api/v1/sessions/{uuid}/backend-events``: a recording's backend events (secret key)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.api.query import int_param, limit_param
from fieldreport.ingest.auth import app_state, project_for_secret_key
from fieldreport.ingest.errors import HTTPProblem, not_found
from fieldreport.storage.backend_events import (
    EVENT_TYPES,
    backend_event_dict,
    events_for_recording,
    recording_known,
)

MAX_LIMIT = 5000


def _list_param(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


async def list_backend_events(request: Request) -> Response:
    """A recording's backend events, oldest first.
    ---
    summary: List a recording's backend events
    tags: [fullstack]
    security: [{secretKey: []}]
    parameters:
      - {name: uuid, in: path, required: true, schema: {type: string}}
      - {name: since, in: query, schema: {type: integer}, description: "unix ms, inclusive"}
      - {name: until, in: query, schema: {type: integer}, description: "unix ms, inclusive"}
      - {name: type, in: query, schema: {type: string}, description: "log,exception"}
      - {name: level, in: query, schema: {type: string}, description: "e.g. error,warning"}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 5000}}
      - {name: offset, in: query, schema: {type: integer, minimum: 0}}
    responses:
      200:
        description: The events (also those still waiting for the recording to start).
        content: {application/json: {schema: {$ref: '#/components/schemas/BackendEventList'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    recording = request.path_params["uuid"]
    since = int_param(request, "since")
    until = int_param(request, "until")
    limit = limit_param(request, default=1000, maximum=MAX_LIMIT)
    offset = int_param(request, "offset", minimum=0) or 0
    types = _list_param(request, "type")
    levels = _list_param(request, "level")
    if unknown := [t for t in types if t not in EVENT_TYPES]:
        raise HTTPProblem(400, f"unknown type {unknown[0]!r}: use log or exception")
    async with state.db.read() as conn:
        known = await recording_known(conn, project.id, recording)
        events = await events_for_recording(
            conn,
            project.id,
            recording,
            since=since,
            until=until,
            types=types,
            levels=levels,
            limit=limit,
            offset=offset,
        )
    if not known and not events and offset == 0:
        raise not_found(f"no recording {recording!r} and no backend events for it in this project")
    return JSONResponse(
        {
            "recording": recording,
            "recording_known": known,
            "events": [backend_event_dict(e) for e in events],
            "next_offset": offset + limit if len(events) == limit else None,
        }
    )


routes = [
    Route("/api/v1/sessions/{uuid}/backend-events", list_backend_events, methods=["GET"]),
]
