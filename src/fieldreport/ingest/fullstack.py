"""The full-stack API (seed 001): backends attach logs and exceptions to a recording.

``POST /api/fullstack/v1/send`` takes one event, ``POST /api/fullstack/v1/send-batch`` a
JSON array of them. Authenticated by the project's secret key (``Authorization: Bearer``).
Every answer, errors included, uses the seed's body shapes; the status codes are ours:

=====  ===================================================================================
200    stored durably (committed). With the header ``X-Fieldreport-Pending``: no session or
       report of the project names the recording *yet* (the backend was faster than the
       browser); the event waits for it for FIELDREPORT_FULLSTACK_PENDING_TTL
400    validation: one error entry per problem; also a body that is not JSON
401    missing or unknown key (``ErrUserNotLoggedIn``)
404    no such recording for this project (another project's session, or nothing to wait for)
413    the request body is larger than any valid event could be
415    the Content-Type is not application/json
503    the database is unavailable or the writer is overloaded; retry after ``Retry-After``
=====  ===================================================================================
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from fieldreport.ingest.asgi import JSON_TYPE, Answer, first_headers, raw_headers, response_start
from fieldreport.ingest.auth import app_state, bearer_from_header
from fieldreport.ingest.fullstack_input import (
    NO_RECORDING,
    NOT_LOGGED_IN,
    BadBody,
    encode,
    error_body,
    ok_answer,
    ok_body,
    read_event,
    read_events,
)
from fieldreport.ingest.keycache import KeyCache
from fieldreport.ingest.shedding import InFlight, in_flight, shed_load
from fieldreport.keys import hash_key
from fieldreport.metrics import OBSERVED, Observed
from fieldreport.routing import asgi_route
from fieldreport.state import AppState
from fieldreport.storage.backend_events import BackendEvent, NewEvent, StoreResult
from fieldreport.storage.event_writer import EventWriter, KeyRevoked, WriterOverloaded
from fieldreport.storage.projects import projects_for_secret_hashes

log = logging.getLogger(__name__)

PENDING_HEADER = "X-Fieldreport-Pending"


class Refusal(Exception):
    """A whole-request error, answered in the seed's error shape."""

    def __init__(
        self, status: int, *messages: str, name: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(messages[0] if messages else "")
        self.status = status
        self.body = error_body(*messages, name=name)
        self.headers = headers or {}

    def response(self) -> Response:
        return json_response(self.body, self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """What ``JSONResponse`` answers, byte for byte, without its slow ``json.dumps``."""
    return Response(encode(body), status, headers, media_type="application/json")


def event_writer(app: Starlette, state: AppState) -> EventWriter:
    """The app's group-commit writer (created on first use, stopped with the app)."""
    writer: EventWriter | None = getattr(app.state, "event_writer", None)
    if writer is None:
        writer = EventWriter(
            state.writer,
            state.db,
            pending_ttl=timedelta(seconds=state.settings.fullstack_pending_ttl),
            max_pending=state.settings.fullstack_max_pending,
        )
        app.state.event_writer = writer
    return writer


async def start_event_writer(app: Starlette, state: AppState) -> None:
    event_writer(app, state).start()  # also sweeps pending events while the server runs


async def stop_event_writer(app: Starlette) -> None:
    writer: EventWriter | None = getattr(app.state, "event_writer", None)
    if writer is not None:
        await writer.stop()  # kept: a request arriving after this gets 503, not a new writer


class Api:
    """What the full-stack endpoints use, found once per app and state (read per request,
    it cost several lookups and a formatted string)."""

    def __init__(self, app: Starlette, state: AppState, counters: InFlight) -> None:
        self.state = state
        self.writer = event_writer(app, state)
        self.keys: KeyCache[int] = KeyCache()
        # Authorization header -> (project id, key hash): a known client's next request
        # skips parsing the header and hashing its key (SHA-256 and hex: ~1.6 µs, ~4% of
        # the instructions of an event request). A hint like ``keys``, for as long.
        self.senders: KeyCache[tuple[int, str]] = KeyCache()
        self.in_flight = counters
        self.max_payload = state.settings.fullstack_max_payload_bytes
        # payload and metadata may each reach the limit; JSON escaping can double them.
        self.send_limit = 4 * self.max_payload + 64 * 1024
        ttl = int(state.settings.fullstack_pending_ttl)
        self.pending_note = f"recording not started yet; kept for {ttl}s waiting for it"
        self.pending_header = raw_headers({PENDING_HEADER: self.pending_note})


def _api(scope: Scope) -> Api:
    app: Starlette = scope["app"]
    api: Api | None = getattr(app.state, "fullstack", None)
    if api is None or api.state is not app.state.fieldreport:
        request = Request(scope)
        api = app.state.fullstack = Api(app, app_state(request), in_flight(request))
    return api


def _not_logged_in() -> Refusal:
    name, message = NOT_LOGGED_IN
    return Refusal(401, message, name=name)


_HEADERS = (b"authorization", b"content-type", b"content-length")


class Head:
    """The three request headers this API reads, found in one pass over the raw list."""

    __slots__ = ("authorization", "content_length", "content_type")

    def __init__(self, scope: Scope) -> None:
        authorization, content_type, self.content_length = first_headers(scope, _HEADERS)
        self.authorization = authorization or ""
        self.content_type = content_type or ""


async def _authenticate(api: Api, head: Head) -> tuple[int, str]:
    """The project id and the key's hash; answers 401 before the body is read."""
    known = api.senders.get(head.authorization)
    if known is not None:
        return known
    token = bearer_from_header(head.authorization)
    if token is None:
        raise _not_logged_in()
    key_hash = hash_key(token)
    project_id = api.keys.get(key_hash)
    if project_id is not None:
        api.senders.put(head.authorization, (project_id, key_hash))
        return project_id, key_hash
    try:
        async with api.state.db.read() as conn:
            found = await projects_for_secret_hashes(conn, [key_hash])
    except (OperationalError, DBAPIError, PoolTimeout, OSError) as exc:
        raise _unavailable("database unavailable, try again shortly") from exc
    if key_hash not in found:
        raise _not_logged_in()
    api.keys.put(key_hash, found[key_hash])
    api.senders.put(head.authorization, (found[key_hash], key_hash))
    return found[key_hash], key_hash


def _unavailable(message: str) -> Refusal:
    return Refusal(503, message, name="ErrUnavailable", headers={"Retry-After": "5"})


async def _json_body(receive: Receive, head: Head, limit: int) -> bytes:
    """The body of a JSON request, refused past ``limit`` bytes while it arrives."""
    _check_json_head(head, limit)
    return await _body_from(receive, await receive(), limit)


def _check_json_head(head: Head, limit: int) -> None:
    """Refuse a request that is not JSON or declares a body past ``limit`` bytes."""
    content_type = head.content_type
    if (
        content_type != "application/json"  # what clients send, checked first
        and content_type.split(";", 1)[0].strip().lower() != "application/json"
    ):
        raise Refusal(415, "Content-Type must be application/json")
    declared = head.content_length
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refusal(413, f"Request body is larger than {limit} bytes")


async def _body_from(receive: Receive, message: Message, limit: int) -> bytes:
    """The body whose first message (received) is ``message``; see :func:`_json_body`."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        if message["type"] == "http.disconnect":  # nobody to answer; nothing stored
            raise Refusal(400, "The client disconnected before sending the whole body")
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                raise Refusal(413, f"Request body is larger than {limit} bytes")
            if not message.get("more_body", False):
                return b"".join((*chunks, chunk)) if chunks else chunk
            chunks.append(chunk)
        message = await receive()


_STORE_ERRORS = (KeyRevoked, WriterOverloaded, OperationalError, DBAPIError, PoolTimeout, OSError)


def _store_refusal(api: Api, exc: Exception, key_hash: str) -> Refusal:
    """What a failed store answers (``exc`` is one of ``_STORE_ERRORS``)."""
    if isinstance(exc, KeyRevoked):
        api.keys.forget(key_hash)
        api.senders.clear()  # the headers that carried it (rare: a rotated key)
        return _not_logged_in()
    if isinstance(exc, WriterOverloaded):
        return _unavailable(f"too busy to store events now ({exc}), try again shortly")
    return _unavailable("database unavailable, try again shortly")


async def _store(api: Api, events: list[NewEvent], key_hash: str) -> list[StoreResult]:
    try:
        return await api.writer.store(events, key_hash=key_hash)
    except _STORE_ERRORS as exc:
        raise _store_refusal(api, exc, key_hash) from exc


def _stored(result: StoreResult) -> BackendEvent | None:
    """The stored event, or None when there was no recording for it (answered 404)."""
    return None if result.status == "no_recording" else result.event


def _result_response(result: StoreResult) -> tuple[int, dict[str, Any]]:
    event = _stored(result)
    if event is None:
        return 404, error_body(NO_RECORDING)
    return 200, ok_body(event)


def _overloaded() -> Response:
    return _unavailable("too many requests in flight, try again shortly").response()


SEND_ROUTE = "fullstack.send"  # its in-flight counter (load shedding)


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return status, encode(body), raw_headers(headers or {})


async def _send_one(
    api: Api, scope: Scope, receive: Receive, observed: Observed | None = None
) -> Answer:
    """The answer to one event. ``observed``: the request's, when this app reports to it
    itself (the body bytes received here)."""
    if not api.in_flight.try_enter(SEND_ROUTE):
        log.warning("shedding %s: %d requests in flight", SEND_ROUTE, api.in_flight.limit)
        refusal = _unavailable("too many requests in flight, try again shortly")
        return _answer(refusal.status, refusal.body, refusal.headers)
    try:
        head = Head(scope)
        # A known sender's header needs no coroutine (nor does the store below: each
        # coroutine between this one and the writer's future is one more frame per event).
        known = api.senders.get(head.authorization)
        project_id, key_hash = known if known is not None else await _authenticate(api, head)
        limit = api.send_limit
        _check_json_head(head, limit)
        message = await receive()
        raw = message.get("body", b"")
        if observed is not None and message["type"] == "http.request":
            observed.received += len(raw)
        if (  # the usual event, in one message: no coroutine to gather its body
            message["type"] != "http.request" or message.get("more_body", False) or len(raw) > limit
        ):
            raw = await _body_from(
                receive if observed is None else observed.receive, message, limit
            )
        checked = read_event(raw, project_id, max_payload=api.max_payload)
        if checked.event is None:
            raise Refusal(400, *checked.errors)
        try:
            [result] = await api.writer.store([checked.event], key_hash=key_hash)
        except _STORE_ERRORS as exc:
            raise _store_refusal(api, exc, key_hash) from exc
    except BadBody as exc:
        return _answer(400, error_body(str(exc)))
    except Refusal as refusal:
        return _answer(refusal.status, refusal.body, refusal.headers)
    finally:
        api.in_flight.leave(SEND_ROUTE)
    event = _stored(result)
    if event is None:
        return _answer(404, error_body(NO_RECORDING))
    headers = list(api.pending_header) if result.status == "pending" else []
    return 200, ok_answer(event), headers


async def send(request: Request) -> Response:
    """Attach one log or exception to a recording (seed 001).
    ---
    summary: Send a backend event
    description: >
      Seed 001's full-stack "send". 200: committed; with the header X-Fieldreport-Pending
      when its recording has not started yet (kept waiting for it for
      FIELDREPORT_FULLSTACK_PENDING_TTL). Errors use the seed's shape, one entry per problem.
    tags: [fullstack]
    security: [{secretKey: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/BackendEventIn'}
    responses:
      200: {$ref: '#/components/responses/FullstackOk'}
      400: {$ref: '#/components/responses/FullstackError'}
      401: {$ref: '#/components/responses/FullstackError'}
      404: {$ref: '#/components/responses/FullstackError'}
      413: {$ref: '#/components/responses/FullstackError'}
      415: {$ref: '#/components/responses/FullstackError'}
      503: {$ref: '#/components/responses/FullstackError'}
    """
    status, body, headers = await _send_one(_api(request.scope), request.scope, request.receive)
    response = Response(body, status, media_type="application/json")
    response.raw_headers[:0] = headers
    return response


async def send_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """:func:`send` as the route runs it: a plain ASGI app, the same answer byte for byte
    (headers included) without Starlette's per-route layers (its Request, Response and
    exception wrapper: ~10 µs of a request that costs ~200). Errors it does not answer
    itself still reach the app's exception handlers. On the express lane it reports to the
    request's :class:`~fieldreport.metrics.Observed` itself (its route observes itself)."""
    observed: Observed | None = scope.get(OBSERVED)
    status, body, headers = await _send_one(_api(scope), scope, receive, observed)
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    headers.append(JSON_TYPE)
    await send(response_start(observed, status, headers))
    await send({"type": "http.response.body", "body": body})


@shed_load("fullstack.send-batch", _overloaded)
async def send_batch(request: Request) -> Response:
    """Send up to 1000 events at once, with one result per event.
    ---
    summary: Send backend events in a batch
    description: >
      A JSON array of events as for `send`. The answer (200 once the batch was processed) has
      `success` "true" when every event was stored, and `results`: for each event in order,
      its `status` (what `send` would have answered), `pending: true` when its recording
      has not started yet, and `send`'s body.
    tags: [fullstack]
    security: [{secretKey: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/BackendEventBatch'}
    responses:
      200: {$ref: '#/components/responses/FullstackBatchResult'}
      400: {$ref: '#/components/responses/FullstackError'}
      401: {$ref: '#/components/responses/FullstackError'}
      413: {$ref: '#/components/responses/FullstackError'}
      415: {$ref: '#/components/responses/FullstackError'}
      503: {$ref: '#/components/responses/FullstackError'}
    """
    api = _api(request.scope)
    head = Head(request.scope)
    try:
        project_id, key_hash = await _authenticate(api, head)
        limit = max(32 * 1024 * 1024, api.send_limit)
        raw = await _json_body(request.receive, head, limit)
        checked = read_events(raw, project_id, max_payload=api.max_payload)
        valid = [c.event for c in checked if c.event is not None]
        stored = iter(await _store(api, valid, key_hash) if valid else [])
    except BadBody as exc:
        return Refusal(400, str(exc)).response()
    except Refusal as refusal:
        return refusal.response()
    results: list[dict[str, Any]] = []
    for c in checked:
        if c.event is None:
            results.append({"status": 400, **error_body(*c.errors)})
        else:
            result = next(stored)
            status, answer = _result_response(result)
            pending = {"pending": True} if result.status == "pending" else {}
            results.append({"status": status, **pending, **answer})
    all_ok = all(r["status"] == 200 for r in results)
    return json_response({"success": "true" if all_ok else "false", "results": results})


routes = [
    asgi_route("/api/fullstack/v1/send", send, send_asgi, observes_itself=True),
    Route("/api/fullstack/v1/send-batch", send_batch, methods=["POST"]),
]
