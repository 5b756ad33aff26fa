"""Session recording ingest: ``/v1/{ios,android,mobile,web}/{start,append,late}``.

The mobile protocol is seed 002's (OpenReplay's iOS tracker protocol); the web recorder uses
the same one with JSON-array batches. ``start`` creates the session row and hands out a signed
token; ``append``/``late`` (served by :mod:`fieldreport.ingest.session_append`) verify the
token without a database read, read the batch (checked on the way), then store it and count
it on the session in one transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.ingest.asgi import Answer
from fieldreport.ingest.auth import app_state
from fieldreport.ingest.body import read_limited
from fieldreport.ingest.cors import check_origin, cors_headers, request_origin
from fieldreport.ingest.errors import HTTPProblem, not_found, problem_response
from fieldreport.ingest.reports import preflight
from fieldreport.ingest.session_append import (
    batch_answer,
    batch_app,
    cors_for_error,
    verify_claims,
)
from fieldreport.ingest.session_runtime import PLATFORMS, WEB, session_runtime
from fieldreport.ingest.session_tokens import SessionClaims
from fieldreport.ingest.shedding import shed_load
from fieldreport.routing import asgi_route
from fieldreport.state import AppState
from fieldreport.storage.projects import Project, get_project, project_by_key
from fieldreport.storage.sessions import NewSession, insert_session, popular_image_hashes

log = logging.getLogger(__name__)

START_BODY_LIMIT = 64 * 1024
IMAGES_HASH_LIST_SIZE = 500
_TEXT_FIELDS = {"revID": 128, "userOSVersion": 64, "userDevice": 128, "userUUID": 64}


def _platform(request: Request) -> str:
    platform = str(request.path_params["platform"])
    if platform not in PLATFORMS:
        raise not_found(f"no such recording protocol {platform!r} (use ios, android, mobile, web)")
    return platform


_MAX_ID = 2**31 - 1  # project ids are INTEGER columns; anything larger names no project


async def _project_by_id(conn: Any, project_id: int) -> Project | None:
    return await get_project(conn, project_id) if 0 < project_id <= _MAX_ID else None


async def _project_for_start(state: AppState, data: dict[str, Any]) -> Project:
    key = data.get("projectKey")
    project_id = data.get("projectID")
    async with state.db.read() as conn:
        if isinstance(key, str) and key:
            project = await project_by_key(conn, key, "public")
        elif isinstance(project_id, int) and not isinstance(project_id, bool):
            project = await _project_by_id(conn, project_id)
        elif isinstance(project_id, str) and project_id.isascii() and project_id.isdigit():
            project = await _project_by_id(conn, int(project_id))
        else:
            raise HTTPProblem(
                400, "send `projectKey` (the public key) or `projectID` (the project's id)"
            )
    if project is None:
        raise HTTPProblem(404, "unknown project", code="unknown_project")
    return project


def _start_fields(data: dict[str, Any]) -> dict[str, Any]:
    version = data.get("trackerVersion")
    if not isinstance(version, str) or not version.strip() or len(version) > 64:
        raise HTTPProblem(400, "`trackerVersion` is required (a string of at most 64 characters)")
    fields: dict[str, Any] = {"tracker_version": version.strip()}
    for name, limit in _TEXT_FIELDS.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            raise HTTPProblem(400, f"`{name}` must be a string of at most {limit} characters")
        fields[name] = value
    device_type = data.get("userDeviceType")
    if device_type is not None and (
        not isinstance(device_type, int) or isinstance(device_type, bool)
    ):
        raise HTTPProblem(400, "`userDeviceType` must be a number")
    fields["userDeviceType"] = device_type
    fields["performance"] = data.get("performance")
    return fields


@shed_load("sessions.start")
async def start_session(request: Request) -> Response:
    """Start a recording session.
    ---
    summary: Start a session recording (seed 002 protocol)
    description: >
      `platform` is `ios`, `android`, `mobile` (the seed's mobile protocol) or `web` (the
      browser recorder; CORS per the project's allowed origins). Answers a signed token for
      `append`/`late`/`images`, the new session's id and the project's most used image hashes.
    tags: [sessions]
    parameters:
      - {name: platform, in: path, required: true,
         schema: {type: string, enum: [ios, android, mobile, web]}}
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/SessionStart'}
    responses:
      200:
        description: The session is recorded; use the token for its batches.
        content:
          application/json:
            schema: {$ref: '#/components/schemas/SessionStarted'}
      400: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      413: {$ref: '#/components/responses/Problem'}
      429: {$ref: '#/components/responses/Problem'}
      503: {$ref: '#/components/responses/Problem'}
    """
    extra_headers: dict[str, str] = {}
    try:
        platform = _platform(request)
        state = app_state(request)
        runtime = session_runtime(request)
        raw = await read_limited(request, START_BODY_LIMIT)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise HTTPProblem(400, "the body must be a JSON object", code="malformed_body") from exc
        if not isinstance(data, dict):
            raise HTTPProblem(400, "the body must be a JSON object", code="malformed_body")
        project = await _project_for_start(state, data)
        check_origin(request, project.origins, project.name)
        extra_headers = cors_headers(request, project.origins)
        fields = _start_fields(data)
        now = state.clock()
        runtime.sessions_per_minute.take(project.id, 1, now)
        session_id = str(uuid.uuid4())
        user_uuid = fields.get("userUUID") or str(uuid.uuid4())
        origin = request_origin(request)
        try:
            async with state.db.write() as conn:
                await insert_session(
                    conn,
                    NewSession(
                        id=session_id,
                        project_id=project.id,
                        platform=platform,
                        user_uuid=user_uuid,
                        started_at=now,
                        tracker_version=fields["tracker_version"],
                        rev_id=fields.get("revID", ""),
                        user_os_version=fields.get("userOSVersion", ""),
                        user_device=fields.get("userDevice", ""),
                        user_device_type=fields["userDeviceType"],
                        user_agent=request.headers.get("user-agent", "")[:1000],
                        performance=fields["performance"],
                    ),
                )
            hashes: list[str] = []
            if platform != WEB:
                async with state.db.read() as conn:
                    hashes = await popular_image_hashes(conn, project.id, IMAGES_HASH_LIST_SIZE)
        except (OperationalError, DBAPIError, PoolTimeout, OSError) as exc:
            log.error("database write failed for a new session: %s", exc)
            raise HTTPProblem(
                503, "database unavailable", code="unavailable", headers={"Retry-After": "5"}
            ) from exc
        expires = int(now.timestamp() + state.settings.session_max_length)
        token = runtime.signer.issue(
            SessionClaims(
                session_id=session_id,
                project_id=project.id,
                platform=platform,
                origin=origin if origin not in (None, "null", "invalid") else None,
                expires_at=expires,
            )
        )
    except HTTPProblem as problem:
        return await _problem(request, problem, extra_headers)
    body = {
        "imagesHashList": hashes,
        "token": token,
        "userUUID": user_uuid,
        "sessionID": session_id,
        "expiresAt": expires * 1000,
        "maxBatchBytes": state.settings.session_max_batch_bytes,
    }
    return JSONResponse(body, headers=extra_headers)


async def _problem(request: Request, problem: HTTPProblem, headers: dict[str, str]) -> Response:
    response = problem_response(problem)
    if not headers and request.path_params.get("platform") == WEB:
        headers = await _cors_for_error(request)
    response.headers.update(headers)
    return response


async def _cors_for_error(request: Request) -> dict[str, str]:
    return await cors_for_error(app_state(request), request.headers.get("origin"))


def verify_token(
    request: Request, platform: str, *, late: bool, now: datetime | None = None
) -> SessionClaims:
    """The session a request's bearer token names (signature and expiry checked, no DB read)."""
    state = app_state(request)
    authorization = request.headers.get("authorization", "")
    return verify_claims(
        state, session_runtime(request), authorization, platform, late=late, now=now
    )


def _response(answer: Answer) -> Response:
    status, body, headers = answer
    response = Response(body, status)
    response.raw_headers = headers
    return response


APPEND_ROUTE, LATE_ROUTE = "sessions.append", "sessions.late"  # in-flight counters


async def append_batch(request: Request) -> Response:
    """Push a batch of a running session.
    ---
    summary: Push a session batch
    description: >
      Mobile: `application/octet-stream` (the tracker's binary messages). Web: a JSON array of
      rrweb events, optionally with `Content-Encoding: gzip`. A 200 means the batch and its
      row are durable. 401: the token is invalid or expired; start a new session.
    tags: [sessions]
    security: [{sessionToken: []}]
    parameters:
      - {name: platform, in: path, required: true,
         schema: {type: string, enum: [ios, android, mobile, web]}}
    requestBody:
      required: true
      content:
        application/octet-stream: {}
        application/json: {}
    responses:
      200:
        description: Stored durably.
        content: {application/json: {schema: {$ref: '#/components/schemas/BatchStored'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      413: {$ref: '#/components/responses/Problem'}
      415: {$ref: '#/components/responses/Problem'}
      429: {$ref: '#/components/responses/Problem'}
      503: {$ref: '#/components/responses/Problem'}
      507: {$ref: '#/components/responses/Problem'}
    """
    return _response(
        await batch_answer(request.scope, request.receive, late=False, route=APPEND_ROUTE)
    )


async def late_batch(request: Request) -> Response:
    """Push a late batch (after a crash or reload).
    ---
    summary: Push a late session batch
    description: >
      Like `append`, but the token may have expired up to `FIELDREPORT_SESSION_LATE_GRACE`
      ago (default 24 h). The batch is flagged late.
    tags: [sessions]
    security: [{sessionToken: []}]
    parameters:
      - {name: platform, in: path, required: true,
         schema: {type: string, enum: [ios, android, mobile, web]}}
    requestBody:
      required: true
      content:
        application/octet-stream: {}
        application/json: {}
    responses:
      200:
        description: Stored durably.
        content: {application/json: {schema: {$ref: '#/components/schemas/BatchStored'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      413: {$ref: '#/components/responses/Problem'}
      415: {$ref: '#/components/responses/Problem'}
      429: {$ref: '#/components/responses/Problem'}
      503: {$ref: '#/components/responses/Problem'}
      507: {$ref: '#/components/responses/Problem'}
    """
    return _response(
        await batch_answer(request.scope, request.receive, late=True, route=LATE_ROUTE)
    )


routes = [
    Route("/v1/{platform}/start", start_session, methods=["POST"]),
    # served by plain ASGI apps (session_append.py); the endpoints document them
    asgi_route(
        "/v1/{platform}/append",
        append_batch,
        batch_app(late=False, route=APPEND_ROUTE),
        observes_itself=True,
    ),
    asgi_route(
        "/v1/{platform}/late",
        late_batch,
        batch_app(late=True, route=LATE_ROUTE),
        observes_itself=True,
    ),
    Route("/v1/{platform}/start", preflight, methods=["OPTIONS"], include_in_schema=False),
    Route("/v1/{platform}/append", preflight, methods=["OPTIONS"], include_in_schema=False),
    Route("/v1/{platform}/late", preflight, methods=["OPTIONS"], include_in_schema=False),
]
