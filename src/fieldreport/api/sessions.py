"""Reading session recordings (secret key): list, one session, a web session's events."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fieldreport.api.query import limit_param
from fieldreport.api.session_views import batch_dict, events_stream, iso_z, session_dict
from fieldreport.ingest.auth import app_state, project_for_listing, project_for_secret_key
from fieldreport.ingest.errors import HTTPProblem, not_found
from fieldreport.storage.session_batches import BatchContent, get_batch, session_batches_in_order
from fieldreport.storage.sessions import (
    Session,
    get_image,
    get_session,
    list_sessions,
    reports_naming_session,
)


async def _owned_session(request: Request) -> Session:
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    session_id = str(request.path_params["session_id"])
    async with state.db.read() as conn:
        session = await get_session(conn, session_id)
    if session is None or session.project_id != project.id:
        raise not_found(f"no session {session_id[:64]!r} in this project")
    return session


async def list_project_sessions(request: Request) -> Response:
    """List the project's session recordings, newest first.
    ---
    summary: List sessions
    tags: [sessions]
    security: [{secretKey: []}]
    parameters:
      - {name: project, in: query, required: false, schema: {type: string},
         description: "Project name or id; must be the key's project."}
      - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 500}}
      - {name: before, in: query, required: false, schema: {type: string, format: date-time},
         description: "Only sessions started before this time (for paging: `next_before`)."}
    responses:
      200:
        description: A page of sessions.
        content: {application/json: {schema: {$ref: '#/components/schemas/SessionList'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_listing(state, request)
    limit = limit_param(request, default=50, maximum=500)
    before_raw = request.query_params.get("before")
    before: datetime | None = None
    if before_raw:
        try:
            # A "+00:00" pasted into a URL unencoded arrives as " 00:00".
            before = datetime.fromisoformat(before_raw.replace(" ", "+"))
        except ValueError:
            raise HTTPProblem(
                400, f"`before` must be an ISO 8601 time, got {before_raw[:40]!r}"
            ) from None
    if before is not None and before.tzinfo is None:
        raise HTTPProblem(400, "`before` needs a time zone (e.g. 2026-01-01T00:00:00+00:00)")
    async with state.db.read() as conn:
        page = await list_sessions(conn, project_id=project.id, limit=limit, before=before)
    next_before = iso_z(page[-1].started_at) if len(page) == limit else None
    return JSONResponse({"sessions": [session_dict(s) for s in page], "next_before": next_before})


async def read_session(request: Request) -> Response:
    """Read one session, with the reports that name it.
    ---
    summary: Read one session
    description: >
      The session, the reports that name it (`reports`) and its batches in order
      (`batches`: seq, late, received_at, size as sent, encoding).
    tags: [sessions]
    security: [{secretKey: []}]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200:
        description: The session.
        content: {application/json: {schema: {$ref: '#/components/schemas/Session'}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    session = await _owned_session(request)
    state = app_state(request)
    async with state.db.read() as conn:
        linked = await reports_naming_session(conn, session.project_id, session.id)
        batches = await session_batches_in_order(conn, session.id)
    data = session_dict(session, linked, state.public_url)
    data["batches"] = [batch_dict(b, session.id) for b in batches]
    return JSONResponse(data)


async def session_events(request: Request) -> Response:
    """A web session's rrweb events, in order, as one JSON array (streamed).
    ---
    summary: Read a web session's events
    tags: [sessions]
    security: [{secretKey: []}]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200:
        description: "`[event, event, ...]`: every batch's events in batch order."
        content: {application/json: {schema: {type: array, items: {type: object}}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      409: {$ref: '#/components/responses/Problem'}
    """
    session = await _owned_session(request)
    if session.platform != "web":
        raise HTTPProblem(
            409,
            "only web sessions have rrweb events; this one is a mobile recording",
            code="conflict",
        )
    state = app_state(request)
    async with state.db.read() as conn:
        batches = await session_batches_in_order(conn, session.id)
    content = BatchContent(state.db, state.blobs, session.id, batches)
    return StreamingResponse(
        events_stream(content.chunks, batches),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store"},
    )


async def session_batch(request: Request) -> Response:
    """Download one batch of a session, as it was sent.
    ---
    summary: Download a session batch
    description: >
      The batch's bytes as the client sent them: the tracker's binary messages (mobile) or a
      JSON array of rrweb events (web). A batch sent gzipped is served with
      `Content-Encoding: gzip`.
    tags: [sessions]
    security: [{secretKey: []}]
    parameters:
      - {name: session_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: seq, in: path, required: true, schema: {type: integer, minimum: 1}}
    responses:
      200: {description: The batch., content: {application/octet-stream: {}, application/json: {}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    session = await _owned_session(request)
    seq = int(request.path_params["seq"])
    state = app_state(request)
    async with state.db.read() as conn:
        found = await get_batch(conn, session.id, seq)
    if found is None:
        raise not_found(f"no batch {seq} in this session")
    batch, data = found
    headers = {"Content-Length": str(batch.size), "X-Content-Type-Options": "nosniff"}
    if batch.encoding == "gzip":
        headers["Content-Encoding"] = "gzip"
    media = "application/json" if session.platform == "web" else "application/octet-stream"
    if batch.blob_key is None:
        assert data is not None  # the row holds the bytes (a CHECK constraint says so)
        return Response(data, media_type=media, headers=headers)
    return StreamingResponse(state.blobs.stream(batch.blob_key), media_type=media, headers=headers)


async def session_image(request: Request) -> Response:
    """Download a mobile session image by its hash.
    ---
    summary: Download a mobile session image
    tags: [sessions]
    security: [{secretKey: []}]
    parameters:
      - {name: hash, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: The image., content: {image/png: {}, image/jpeg: {}}}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
    """
    state = app_state(request)
    project = await project_for_secret_key(state, request)
    digest = str(request.path_params["hash"]).lower()
    async with state.db.read() as conn:
        found = await get_image(conn, project.id, digest)
    if found is None:
        raise not_found("no such image in this project")
    blob_key, content_type = found
    return StreamingResponse(
        state.blobs.stream(blob_key),
        # Only an image type the client declared is echoed; anything else is just bytes.
        media_type=content_type
        if content_type.startswith("image/")
        else "application/octet-stream",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )


routes = [
    Route("/api/v1/sessions", list_project_sessions, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}", read_session, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}/events", session_events, methods=["GET"]),
    Route("/api/v1/sessions/{session_id}/batches/{seq:int}", session_batch, methods=["GET"]),
    Route("/api/v1/session-images/{hash}", session_image, methods=["GET"]),
]
