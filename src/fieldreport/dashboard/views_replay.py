"""Session replay: rrweb-player with the recording's backend, console and network events."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fieldreport.api.session_views import events_stream
from fieldreport.dashboard.access import NotVisible
from fieldreport.dashboard.auth import page
from fieldreport.dashboard.jsontree import parse_json
from fieldreport.dashboard.render import SECURITY_HEADERS, render
from fieldreport.dashboard.useragent import parse_agent
from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import LoginSession, can_see_project
from fieldreport.storage.backend_events import backend_event_dict, events_for_recording
from fieldreport.storage.session_batches import BatchContent, session_batches_in_order
from fieldreport.storage.sessions import Session, get_session, reports_naming_session

# The replayed page is rebuilt inside a sandboxed iframe (no scripts run there) and brings
# its own inline styles and images from its original hosts: this page allows those.
REPLAY_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src * data: blob:; font-src * data:; media-src * data: blob:; connect-src 'self'; "
    "frame-src 'self' about: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
MAX_LISTED = 5000  # backend events shown with a session (the API pages through all of them)


async def _visible_session(request: Request, login: LoginSession) -> Session:
    session_id = str(request.path_params.get("session_id", ""))
    if len(session_id) > 64:
        raise NotVisible
    async with app_state(request).db.read() as conn:
        found = await get_session(conn, session_id)
        if found is None or not await can_see_project(conn, login.user, found.project_id):
            raise NotVisible
    return found


def _event_view(event: dict[str, object]) -> dict[str, object]:
    payload = str(event.get("payload") or "")
    metadata = str(event.get("metadata") or "")
    return {
        **event,
        "payload_json": parse_json(payload),
        "metadata_json": parse_json(metadata),
    }


@page()
async def session_page(request: Request, login: LoginSession) -> Response:
    session = await _visible_session(request, login)
    async with app_state(request).db.read() as conn:
        linked = await reports_naming_session(conn, session.project_id, session.id)
        events = await events_for_recording(conn, session.project_id, session.id, limit=MAX_LISTED)
    start_ms = int(session.started_at.timestamp() * 1000)
    backend = [
        {**_event_view(backend_event_dict(e)), "offset_ms": e.timestamp - start_ms} for e in events
    ]
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": REPLAY_CSP}
    return render(
        request,
        "session.html",
        {
            "session": session,
            "agent": parse_agent(session.user_agent),
            "reports": linked,
            "backend": backend,
            "truncated": len(events) == MAX_LISTED,
        },
        headers=headers,
    )


@page()
async def session_events(request: Request, login: LoginSession) -> Response:
    session = await _visible_session(request, login)
    if session.platform != "web":
        raise NotVisible
    state = app_state(request)
    async with state.db.read() as conn:
        batches = await session_batches_in_order(conn, session.id)
    content = BatchContent(state.db, state.blobs, session.id, batches)
    return StreamingResponse(
        events_stream(content.chunks, batches),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@page()
async def session_backend_events(request: Request, login: LoginSession) -> Response:
    session = await _visible_session(request, login)
    async with app_state(request).db.read() as conn:
        events = await events_for_recording(conn, session.project_id, session.id, limit=MAX_LISTED)
    return JSONResponse(
        {"events": [backend_event_dict(e) for e in events]},
        headers={"Cache-Control": "private, no-store"},
    )


routes = [
    Route("/sessions/{session_id}", session_page, methods=["GET"], include_in_schema=False),
    Route(
        "/sessions/{session_id}/events.json",
        session_events,
        methods=["GET"],
        include_in_schema=False,
    ),
    Route(
        "/sessions/{session_id}/backend-events.json",
        session_backend_events,
        methods=["GET"],
        include_in_schema=False,
    ),
]
