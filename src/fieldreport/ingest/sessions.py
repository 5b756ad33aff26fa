"""Session recording ingest: ``/v1/{ios,android,mobile,web}/{start,append,late}``.

The mobile protocol is seed 002's (OpenReplay's iOS tracker protocol); the web recorder uses
the same one with JSON-array batches. ``start`` creates the session row and hands out a signed
token; ``append``/``late`` verify the token without a database read, read the batch
(checked on the way), then store it and count it on the session in one transaction: a small
batch inside its row, a larger one streamed to the blob store first.
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

from fieldreport.ingest.auth import app_state, bearer_token
from fieldreport.ingest.body import read_limited
from fieldreport.ingest.cors import check_origin, cors_headers, request_origin
from fieldreport.ingest.errors import HTTPProblem, not_found, problem_response, unauthorized
from fieldreport.ingest.reports import preflight
from fieldreport.ingest.session_body import BatchBody
from fieldreport.ingest.session_runtime import (
    PLATFORMS,
    WEB,
    same_protocol,
    session_runtime,
)
from fieldreport.ingest.session_tokens import InvalidToken, SessionClaims
from fieldreport.ingest.shedding import shed_load
from fieldreport.state import AppState
from fieldreport.storage.blobs import BlobStoreError
from fieldreport.storage.projects import Project, get_project, origin_known, project_by_key
from fieldreport.storage.session_batches import INLINE_BATCH_BYTES, BatchRecord, record_batches
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
    """Let the recorder read an error (e.g. 401: start again) from an origin some project allows."""
    origin = request_origin(request)
    if origin is None or origin in ("null", "invalid"):
        return {}
    try:
        async with app_state(request).db.read() as conn:
            known = await origin_known(conn, origin) or await origin_known(conn, "*")
    except Exception:  # the error itself matters more than its CORS headers
        return {}
    return cors_headers(request, [origin]) if known else {}


def verify_token(
    request: Request, platform: str, *, late: bool, now: datetime | None = None
) -> SessionClaims:
    """The session a request's bearer token names (signature and expiry checked, no DB read)."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing session token: send `Authorization: Bearer <token>`")
    state = app_state(request)
    grace = state.settings.session_late_grace if late else 0.0
    try:
        claims = session_runtime(request).signer.verify(
            token, now=state.clock() if now is None else now, grace=grace
        )
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    if not same_protocol(claims.platform, platform):
        raise unauthorized(f"this token belongs to a {claims.platform} session")
    return claims


def _token_cors(request: Request, claims: SessionClaims) -> dict[str, str]:
    """A web batch must come from the origin its session was started from."""
    origin = request_origin(request)
    if origin is None:
        return {}
    if claims.origin is None or origin != claims.origin:
        raise HTTPProblem(
            403,
            "this session was started from another origin",
            code="origin_not_allowed",
        )
    return cors_headers(request, [origin])


def _encoding(request: Request) -> str:
    value = request.headers.get("content-encoding", "").strip().lower()
    if value in ("", "identity"):
        return ""
    if value in ("gzip", "x-gzip"):
        return "gzip"
    raise HTTPProblem(
        415, f"unsupported Content-Encoding {value!r} (send gzip or none)", code="unsupported"
    )


async def _store_batch(request: Request, *, late: bool) -> Response:
    extra_headers: dict[str, str] = {}
    try:
        platform = _platform(request)
        state = app_state(request)
        now = state.clock()
        claims = verify_token(request, platform, late=late, now=now)
        if platform == WEB:
            extra_headers = _token_cors(request, claims)
        runtime = session_runtime(request)
        settings = state.settings
        encoding = _encoding(request)
        declared = request.headers.get("content-length", "")
        admitted = declared.isdigit() and int(declared) <= settings.session_max_batch_bytes
        if admitted:
            runtime.bytes_per_minute.take(claims.project_id, int(declared), now)
        body = BatchBody(
            request,
            limit=settings.session_max_batch_bytes,
            inflated_limit=settings.session_max_inflated_bytes,
            gzip=encoding == "gzip",
            json_events=platform == WEB,
        )
        if not admitted:  # chunked: charge what arrives, refuse once over the limit
            runtime.bytes_per_minute.take(claims.project_id, 0, now)
        seq = await _persist(state, claims, body, encoding=encoding, late=late)
        if not admitted:
            runtime.bytes_per_minute.charge(claims.project_id, body.size, now)
    except HTTPProblem as problem:
        return await _problem(request, problem, extra_headers)
    # The bytes JSONResponse({"seq": seq}) renders, without a json.dumps per batch.
    return Response(b'{"seq":%d}' % seq, media_type="application/json", headers=extra_headers)


async def _persist(
    state: AppState,
    claims: SessionClaims,
    body: BatchBody,
    *,
    encoding: str,
    late: bool,
) -> int:
    """A small batch goes into its row; a larger one to the blob store first (see
    :func:`_persist_blob`). The row commits in the batch writer's next transaction."""
    data = await body.read_inline(INLINE_BATCH_BYTES)
    if data is None:
        return await _persist_blob(state, claims, body, encoding=encoding, late=late)
    body.finish()
    return await _record(state, _batch_record(state, claims, body, encoding, late, data=data))


async def _record(state: AppState, record: BatchRecord) -> int:
    """Commit the batch's row (durable when this returns); its sequence number."""
    try:
        seq = await state.writer.submit(record_batches, record)
    except (OperationalError, DBAPIError, PoolTimeout, OSError) as exc:
        log.error("database write failed for a session batch: %s", exc)
        raise HTTPProblem(
            503, "database unavailable", code="unavailable", headers={"Retry-After": "5"}
        ) from exc
    if seq is None:
        raise unauthorized("this session no longer exists: start a new session")
    return seq


def _batch_record(
    state: AppState,
    claims: SessionClaims,
    body: BatchBody,
    encoding: str,
    late: bool,
    *,
    blob_key: str | None = None,
    data: bytes | None = None,
) -> BatchRecord:
    """The row of a received batch: its bytes (``data``) or where they are (``blob_key``)."""
    return BatchRecord(
        session_id=claims.session_id,
        project_id=claims.project_id,
        late=late,
        received_at=state.clock(),
        size=body.size,
        encoding=encoding,
        blob_key=blob_key,
        data=data,
    )


async def _persist_blob(
    state: AppState,
    claims: SessionClaims,
    body: BatchBody,
    *,
    encoding: str,
    late: bool,
) -> int:
    """Blob first (written, then flushed with concurrent writers), then the row; a failure
    after the blob deletes it again."""
    key = f"sessions/{claims.project_id}/{claims.session_id}/{uuid.uuid4().hex}"
    stored = False
    row_may_exist = False
    try:
        try:
            await state.blobs.write(key, body.chunks())
            stored = True
            body.finish()
            await state.blobs.flush()  # durable before the row that names it commits
        except BlobStoreError as exc:
            log.error("blob store failed for a session batch: %s", exc)
            status = 507 if "full" in str(exc) else 503
            raise HTTPProblem(
                status,
                f"storage unavailable: {exc}",
                code="storage_unavailable",
                headers={"Retry-After": "30"},
            ) from exc
        record = _batch_record(state, claims, body, encoding, late, blob_key=key)
        # Cancelled while the row's transaction may still commit: keep the blob (a row must
        # never point at a missing blob; an unreferenced blob only costs space).
        row_may_exist = True
        try:
            return await _record(state, record)
        except HTTPProblem:
            row_may_exist = False  # the transaction failed, or the session is gone: no row
            raise
    except BaseException:
        if stored and not row_may_exist:
            try:
                await state.blobs.delete(key)
            except Exception:
                log.warning("could not delete orphaned batch blob %s", key, exc_info=True)
        raise


@shed_load("sessions.append")
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
    """
    return await _store_batch(request, late=False)


@shed_load("sessions.late")
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
    """
    return await _store_batch(request, late=True)


routes = [
    Route("/v1/{platform}/start", start_session, methods=["POST"]),
    Route("/v1/{platform}/append", append_batch, methods=["POST"]),
    Route("/v1/{platform}/late", late_batch, methods=["POST"]),
    Route("/v1/{platform}/start", preflight, methods=["OPTIONS"], include_in_schema=False),
    Route("/v1/{platform}/append", preflight, methods=["OPTIONS"], include_in_schema=False),
    Route("/v1/{platform}/late", preflight, methods=["OPTIONS"], include_in_schema=False),
]
