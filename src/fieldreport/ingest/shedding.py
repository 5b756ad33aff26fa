"""Load shedding: a bounded number of requests in flight per ingest route.

When the database or the blob store slows down, requests would otherwise pile up in
memory (each one holding a spooled body, a pool slot, a socket) until the process falls
over. Instead each ingest route admits at most ``FIELDREPORT_INGEST_MAX_IN_FLIGHT``
requests at a time and answers the next one at once with ``503`` and ``Retry-After``:
there is no waiting queue at all, so the backlog lives in the clients (which retry), not
in this process. The counters are per process (per app), which is what bounds memory.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from fieldreport.ingest.cors import cors_headers_for
from fieldreport.ingest.errors import HTTPProblem, problem_response

log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
RETRY_AFTER_SECONDS = 2


class InFlight:
    """Counts requests in flight by route name and refuses those past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current: dict[str, int] = {}
        self.shed: dict[str, int] = {}

    def try_enter(self, route: str) -> bool:
        now = self.current.get(route, 0)
        if now >= self.limit:
            self.shed[route] = self.shed.get(route, 0) + 1
            return False
        self.current[route] = now + 1
        return True

    def leave(self, route: str) -> None:
        self.current[route] -= 1


def overloaded() -> HTTPProblem:
    return HTTPProblem(
        503,
        "server busy: too many requests in flight, try again shortly",
        code="overloaded",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def in_flight(request: Request) -> InFlight:
    """The app's in-flight counters (created on first use from the settings)."""
    return app_in_flight(request.app)


def app_in_flight(app: Starlette) -> InFlight:
    """:func:`in_flight` for plain ASGI endpoints, which have ``scope["app"]``, no request."""
    counters: InFlight | None = getattr(app.state, "in_flight", None)
    if counters is None:
        limit = app.state.fieldreport.settings.ingest_max_in_flight
        counters = InFlight(limit)
        app.state.in_flight = counters
    return counters


def shed_response(origin_header: str | None) -> Response:
    """The 503 of a request shed: our JSON problem, code ``overloaded``, with ``Retry-After``.
    Readable from any origin (it needs no database read and says only "busy"), so the widget
    or recorder in a browser can see Retry-After and back off."""
    response = problem_response(overloaded())
    response.headers.update(cors_headers_for(origin_header, ["*"]))
    return response


def shed_load(
    route: str, refuse: Callable[[], Response] | None = None
) -> Callable[[Endpoint], Endpoint]:
    """Decorate an ingest endpoint: at most the configured number of its requests at once.

    ``refuse`` builds the 503 for APIs whose error bodies a seed dictates (it must carry
    ``Retry-After``); the default is our JSON problem with code ``overloaded``.
    """

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            counters = in_flight(request)
            if not counters.try_enter(route):
                log.warning("shedding %s: %d requests in flight", route, counters.limit)
                if refuse is not None:
                    return refuse()
                return shed_response(request.headers.get("origin"))
            try:
                return await endpoint(request)
            finally:
                counters.leave(route)

        return guarded

    return decorate
