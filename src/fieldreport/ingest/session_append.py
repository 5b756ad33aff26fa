"""Session batches (``append``, ``late``) as plain ASGI apps.

A recorder sends a batch every few seconds per open tab, so this is the hottest path of
session ingest. Its routes run :func:`batch_app` directly instead of a Starlette endpoint:
the headers it needs are found in one pass over the raw list, the body is read from
``receive`` and the answer is sent as two ASGI messages, without Starlette's request,
response and per-route exception layers. Every answer is the one the Starlette endpoints
gave, byte for byte and header for header (``tests/ingest/test_session_answers.py`` pins
them); errors it does not answer itself still reach the app's exception handlers.

A batch is read (checked on the way), then stored and counted on its session in one
transaction: a small batch inside its row, a larger one streamed to the blob store first.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fieldreport.ingest.asgi import JSON_TYPE, Answer, raw_headers, response_start
from fieldreport.ingest.auth import bearer_from_header
from fieldreport.ingest.cors import cors_headers_for, normalized_origin
from fieldreport.ingest.errors import (
    HTTPProblem,
    not_found,
    problem_response,
    storage_unavailable,
    unauthorized,
)
from fieldreport.ingest.session_body import BatchBody
from fieldreport.ingest.session_runtime import (
    PLATFORMS,
    WEB,
    SessionRuntime,
    app_session_runtime,
    same_protocol,
)
from fieldreport.ingest.session_tokens import InvalidToken, SessionClaims
from fieldreport.ingest.shedding import app_in_flight, shed_response
from fieldreport.metrics import OBSERVED, Observed
from fieldreport.state import AppState
from fieldreport.storage.blobs import BlobStoreError
from fieldreport.storage.projects import origin_known
from fieldreport.storage.session_batches import INLINE_BATCH_BYTES, BatchRecord, record_batches

log = logging.getLogger(__name__)


class BatchHead:
    """The request headers a batch needs, found in one pass (the first one wins, as in
    Starlette's ``Headers``; values decoded as Latin-1). The names are compared one by one
    here rather than through :func:`~fieldreport.ingest.asgi.first_headers`' lookups in a
    tuple: this runs for every batch."""

    __slots__ = ("authorization", "content_encoding", "content_length", "origin")

    def __init__(self, scope: Scope) -> None:
        authorization = origin = length = encoding = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"content-length":
                if length is None:
                    length = value
            elif name == b"origin":
                if origin is None:
                    origin = value
            elif name == b"content-encoding" and encoding is None:
                encoding = value
        self.authorization = "" if authorization is None else authorization.decode("latin-1")
        self.origin = None if origin is None else origin.decode("latin-1")
        self.content_length = None if length is None else length.decode("latin-1")
        self.content_encoding = "" if encoding is None else encoding.decode("latin-1")


def verify_claims(
    state: AppState,
    runtime: SessionRuntime,
    authorization: str,
    platform: str,
    *,
    late: bool,
    now: datetime | None = None,
) -> SessionClaims:
    """The session a bearer token names (signature and expiry checked, no DB read)."""
    token = bearer_from_header(authorization)
    if token is None:
        raise unauthorized("missing session token: send `Authorization: Bearer <token>`")
    grace = state.settings.session_late_grace if late else 0.0
    try:
        claims = runtime.signer.verify(
            token, now=state.clock() if now is None else now, grace=grace
        )
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc
    if not same_protocol(claims.platform, platform):
        raise unauthorized(f"this token belongs to a {claims.platform} session")
    return claims


async def cors_for_error(state: AppState, origin_header: str | None) -> dict[str, str]:
    """Let the recorder read an error (e.g. 401: start again) from an origin some project allows."""
    origin = normalized_origin(origin_header)
    if origin is None or origin in ("null", "invalid"):
        return {}
    try:
        async with state.db.read() as conn:
            known = await origin_known(conn, origin) or await origin_known(conn, "*")
    except Exception:  # the error itself matters more than its CORS headers
        return {}
    return cors_headers_for(origin_header, [origin]) if known else {}


def _token_cors(head: BatchHead, claims: SessionClaims) -> dict[str, str]:
    """A web batch must come from the origin its session was started from."""
    origin = normalized_origin(head.origin)
    if origin is None:
        return {}
    if claims.origin is None or origin != claims.origin:
        raise HTTPProblem(
            403,
            "this session was started from another origin",
            code="origin_not_allowed",
        )
    return cors_headers_for(head.origin, [origin])


def _encoding(header: str) -> str:
    value = header.strip().lower()
    if value in ("", "identity"):
        return ""
    if value in ("gzip", "x-gzip"):
        return "gzip"
    raise HTTPProblem(
        415, f"unsupported Content-Encoding {value!r} (send gzip or none)", code="unsupported"
    )


def _response_answer(response: Response) -> Answer:
    return response.status_code, bytes(response.body), response.raw_headers


async def _problem(
    state: AppState, head: BatchHead, platform: str, problem: HTTPProblem, headers: dict[str, str]
) -> Answer:
    response = problem_response(problem)
    if not headers and platform == WEB:
        headers = await cors_for_error(state, head.origin)
    response.headers.update(headers)
    return _response_answer(response)


async def batch_answer(
    scope: Scope, receive: Receive, *, late: bool, route: str, observed: Observed | None = None
) -> Answer:
    """Store one batch (at most the configured number of ``route``'s requests at once) and
    give the answer. ``observed``: the request's, when this app reports to it itself (the
    body bytes received here: all of them pass through its :class:`BatchBody`).

    The whole path of a batch kept in its row is this one coroutine (the blob path and the
    answers to errors are the only ones called out): each coroutine between the route and
    the writer's future is a frame made for every batch and resumed when its row commits.
    """
    app: Starlette = scope["app"]
    counters = app_in_flight(app)
    if not counters.try_enter(route):
        log.warning("shedding %s: %d requests in flight", route, counters.limit)
        return _response_answer(shed_response(BatchHead(scope).origin))
    body: BatchBody | None = None
    try:
        head = BatchHead(scope)
        platform = str(scope["path_params"]["platform"])
        state: AppState = app.state.fieldreport
        extra_headers: dict[str, str] = {}
        try:
            if platform not in PLATFORMS:
                raise not_found(
                    f"no such recording protocol {platform!r} (use ios, android, mobile, web)"
                )
            now = state.clock()
            runtime = app_session_runtime(app)
            claims = verify_claims(state, runtime, head.authorization, platform, late=late, now=now)
            if platform == WEB:
                extra_headers = _token_cors(head, claims)
            settings = state.settings
            encoding = _encoding(head.content_encoding)
            declared = head.content_length or ""
            admitted = declared.isdigit() and int(declared) <= settings.session_max_batch_bytes
            if admitted:
                runtime.bytes_per_minute.take(claims.project_id, int(declared), now)
            body = BatchBody(
                receive,
                head.content_length,
                limit=settings.session_max_batch_bytes,
                inflated_limit=settings.session_max_inflated_bytes,
                gzip=encoding == "gzip",
                json_events=platform == WEB,
            )
            if not admitted:  # chunked: charge what arrives, refuse once over the limit
                runtime.bytes_per_minute.take(claims.project_id, 0, now)
            # A small batch goes into its row, a larger one to the blob store first (see
            # _persist_blob); the row commits in the batch writer's next transaction.
            data = await body.read_inline(INLINE_BATCH_BYTES)
            if data is None:
                seq = await _persist_blob(state, claims, body, encoding=encoding, late=late)
            else:
                body.finish()
                record = _batch_record(state, claims, body, encoding, late, data=data)
                try:
                    [stored] = await state.writer.submit_many(record_batches, [record])
                except _DATABASE_ERRORS as exc:
                    raise _unavailable(exc) from exc
                seq = _seq_of(stored)
            if not admitted:
                runtime.bytes_per_minute.charge(claims.project_id, body.size, now)
        except HTTPProblem as problem:
            return await _problem(state, head, platform, problem, extra_headers)
        # The bytes JSONResponse({"seq": seq}) renders, without a json.dumps per batch.
        content = b'{"seq":%d}' % seq
        headers = raw_headers(extra_headers) if extra_headers else []
        headers.append((b"content-length", b"%d" % len(content)))
        headers.append(JSON_TYPE)
        return 200, content, headers
    finally:
        counters.leave(route)
        if observed is not None and body is not None:
            observed.received += body.size


def batch_app(*, late: bool, route: str) -> ASGIApp:
    """The ASGI app of ``append`` (``late=False``) or ``late``."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        # reports to the request's Observed itself on the express lane (observes_itself)
        observed: Observed | None = scope.get(OBSERVED)
        status, body, headers = await batch_answer(
            scope, receive, late=late, route=route, observed=observed
        )
        await send(response_start(observed, status, headers))
        await send({"type": "http.response.body", "body": body})

    return serve


_DATABASE_ERRORS = (OperationalError, DBAPIError, PoolTimeout, OSError)


def _unavailable(exc: Exception) -> HTTPProblem:
    log.error("database write failed for a session batch: %s", exc)
    return HTTPProblem(
        503, "database unavailable", code="unavailable", headers={"Retry-After": "5"}
    )


def _seq_of(stored: int | None) -> int:
    if stored is None:
        raise unauthorized("this session no longer exists: start a new session")
    return stored


async def _record(state: AppState, record: BatchRecord) -> int:
    """Commit the batch's row (durable when this returns); its sequence number."""
    try:
        [seq] = await state.writer.submit_many(record_batches, [record])
    except _DATABASE_ERRORS as exc:
        raise _unavailable(exc) from exc
    return _seq_of(seq)


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
            raise storage_unavailable(exc) from exc
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
