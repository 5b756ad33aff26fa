"""Session replay: rrweb-player with the recording's console and network events."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fieldreport.api.session_views import events_stream
from fieldreport.dashboard.access import NotVisible
from fieldreport.dashboard.auth import page
from fieldreport.dashboard.render import SECURITY_HEADERS, render
from fieldreport.dashboard.useragent import parse_agent
from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import LoginSession, can_see_project
from fieldreport.storage.sessions import (
    Session,
    get_session,
    reports_naming_session,
    session_batches_in_order,
)

# The replayed page is rebuilt inside a sandboxed iframe (no scripts run there) and brings
# its own inline styles and images from its original hosts: this page allows those.
REPLAY_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src * data: blob:; font-src * data:; media-src * data: blob:; connect-src 'self'; "
    "frame-src 'self' about: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


async def _visible_session(request: Request, login: LoginSession) -> Session:
    session_id = str(request.path_params.get("session_id", ""))
    if len(session_id) > 64:
        raise NotVisible
    async with app_state(request).db.read() as conn:
        found = await get_session(conn, session_id)
        if found is None or not await can_see_project(conn, login.user, found.project_id):
            raise NotVisible
    return found


@page()
async def session_page(request: Request, login: LoginSession) -> Response:
    session = await _visible_session(request, login)
    async with app_state(request).db.read() as conn:
        linked = await reports_naming_session(conn, session.project_id, session.id)
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": REPLAY_CSP}
    return render(
        request,
        "session.html",
        {
            "session": session,
            "agent": parse_agent(session.user_agent),
            "reports": linked,
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
    return StreamingResponse(
        events_stream(state.blobs, batches),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


routes = [
    Route("/sessions/{session_id}", session_page, methods=["GET"], include_in_schema=False),
    Route(
        "/sessions/{session_id}/events.json",
        session_events,
        methods=["GET"],
        include_in_schema=False,
    ),
]
