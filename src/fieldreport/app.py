"""The ASGI application factory: one Starlette app for every HTTP surface."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from fieldreport import __version__, dashboard, openapi
from fieldreport.api import backend_events as api_backend_events
from fieldreport.api import deliveries as api_deliveries
from fieldreport.api import reports as api_reports
from fieldreport.api import sessions as api_sessions
from fieldreport.delivery import metrics as delivery_metrics
from fieldreport.express import App
from fieldreport.gc_tuning import settle_after_startup
from fieldreport.ingest import fullstack as ingest_fullstack
from fieldreport.ingest import reports as ingest_reports
from fieldreport.ingest import session_images, sessions
from fieldreport.ingest.errors import HTTPProblem, handle_problem
from fieldreport.metrics import Metrics, ObservabilityMiddleware, metrics_endpoint, route_templates
from fieldreport.routing import IndexedRouter
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage import write_metrics
from fieldreport.web import routes as web_routes

log = logging.getLogger(__name__)
_NET_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ETIMEDOUT}
# PostgreSQL SQLSTATEs that mean "not reachable now": class 08 (connection exception),
# 57P01-57P03 (shutting down, crashed, starting up / not yet accepting connections) and
# 53300 (too many connections). asyncpg reports them as plain DBAPIErrors.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

# Background services started with the app (the delivery worker, retention...):
# each takes the state and returns an async "stop" callable.
Service = Callable[[AppState], Awaitable[Callable[[], Awaitable[None]]]]


async def healthz(request: Request) -> Response:
    """Liveness and database check.
    ---
    summary: Health check
    tags: [ops]
    responses:
      200: {description: "The server and its database are up."}
      503: {description: "The database cannot be reached."}
    """
    state: AppState = request.app.state.fieldreport
    try:
        async with state.db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__})


def _is_unavailable(exc: BaseException) -> bool:
    """Errors that mean "the database is unreachable right now", not "we have a bug"."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
    return isinstance(exc, OSError) and exc.errno in _NET_ERRNOS


async def _unavailable(request: Request, exc: Exception) -> Response:
    if not _is_unavailable(exc):
        raise exc
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": "service temporarily unavailable, try again shortly", "code": "unavailable"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, wrong method...) as JSON problems for API
    clients; a browser asking for HTML gets the plain text it would have had."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    if "text/html" in request.headers.get("accept", ""):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)
    code = _CODES.get(exc.status_code, "error")
    return JSONResponse(
        {"error": exc.detail, "code": code}, status_code=exc.status_code, headers=headers
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error", "code": "internal"}, status_code=500)


class _State(State):
    """Starlette's ``app.state``, where reading a value that is set is a plain attribute
    lookup. Starlette's keeps the values only in a dict behind ``__getattr__``, so each read
    first fails the normal lookup (raising, and formatting the message of, an AttributeError
    inside CPython) before ``__getattr__`` finds it: ~2 µs, several times per request."""

    def __setattr__(self, key: Any, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: Any) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


def build_routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *ingest_reports.routes,
        *api_reports.routes,
        *web_routes.routes,
        *api_deliveries.routes,
        *sessions.routes,
        *session_images.routes,
        *api_sessions.routes,
        *ingest_fullstack.routes,
        *api_backend_events.routes,
        *openapi.routes(),
        *dashboard.routes(),
    ]


def create_app(
    settings: Settings,
    *,
    state: AppState | None = None,
    services: list[Service] | None = None,
    freeze_gc: bool = False,
) -> Starlette:
    """Build the app. With ``state`` given, the caller owns it; otherwise the lifespan opens
    the database and blob store and closes them on shutdown. ``freeze_gc`` (``serve``): after
    start-up, freeze what is alive and raise the young-generation threshold (see
    :mod:`fieldreport.gc_tuning`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = state is None
        current = state if state is not None else await open_state(settings)
        app.state.fieldreport = current
        stops = [await start(current) for start in services or []]
        await ingest_fullstack.start_event_writer(app, current)
        if freeze_gc:
            # A server process: freeze what start-up built, tune the young generation.
            # Off for apps that tests build by the hundred in one process.
            settle_after_startup()
        try:
            yield
        finally:
            await ingest_fullstack.stop_event_writer(app)  # commits what is queued
            for stop in reversed(stops):
                await stop()
            if own:
                await current.close()

    routes = build_routes()
    metrics = Metrics()
    app = App(
        middleware=[
            Middleware(ObservabilityMiddleware, metrics=metrics, templates=route_templates(routes))
        ],
        exception_handlers={
            HTTPProblem: handle_problem,
            HTTPException: _http_exception,
            DBAPIError: _unavailable,
            PoolTimeout: _unavailable,
            OSError: _unavailable,
            Exception: _server_error,
        },
    )
    app.state = _State()
    # same routes and lifespan, but each request only tries the routes that can match its path
    app.router = IndexedRouter(routes, lifespan=lifespan)
    app.state.metrics = metrics
    delivery_metrics.register(metrics, lambda: getattr(app.state, "fieldreport", None))
    write_metrics.register(metrics, lambda: getattr(app.state, "fieldreport", None))
    if state is not None:
        app.state.fieldreport = state
    return app
