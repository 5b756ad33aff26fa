"""The express lane: a POST that the router would give a plain ASGI route goes straight to it.

Every request crosses Starlette's ``ServerErrorMiddleware``, our
:class:`~fieldreport.metrics.ObservabilityMiddleware`, Starlette's ``ExceptionMiddleware``,
the router and the route before the endpoint runs. Measured in-process with an endpoint
that only answers, those layers cost ~11 µs a request (server errors ~1.2, exception
handling ~2, routing ~3, observability ~4.5): for a full-stack event, whose whole server
cost is ~200 µs, the layers other than observability were ~3% of it; for a session batch
(a path with a parameter, two regex matches) ~134k of ~650k instructions of its request path.

For a request the router would hand to an express route (:meth:`IndexedRouter.express`: a
POST whose route is one made by :func:`~fieldreport.routing.asgi_route`, at a literal path
or with path parameters),
:class:`App` sets what routing sets in the scope and runs the route's app inside the
observability middleware's own bookkeeping (request id, metrics), nothing else. The layers
it skips only act when the route raises, and then they still do, unchanged: the exception
is handed to copies of the app's own two middlewares (same handlers, same debug flag)
around an app that raises it. A handled exception (an ``HTTPException``, a database error)
answers what it answered, with the request id, and is counted; an unhandled one gets the
same 500, logged, and is re-raised to the server. The one difference: an exception with a
handler after the response started re-raises as itself, where Starlette raises a
``RuntimeError`` from it (the send of an answer's body does not raise in practice).

The lane runs inline in :meth:`App.__call__` with the middleware's
:meth:`~fieldreport.metrics.ObservabilityMiddleware.begin` and ``end`` (no coroutine of its
own nor the middleware's), and a route made with ``observes_itself`` gets the server's
``receive`` and ``send`` and reports to the request's :class:`~fieldreport.metrics.Observed`
itself: a trivial express request 53.7k -> 45.2k instructions in-process (callgrind).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldreport.metrics import ANSWERING, OBSERVED, ObservabilityMiddleware, Observed
from fieldreport.routing import IndexedRouter


def _raising(exc: Exception) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def _nowhere(message: Message) -> None:
    """A send after the response started: Starlette's server error middleware sends nothing."""


class Lane:
    """The app's middlewares as the express lane needs them (from its built stack)."""

    def __init__(
        self,
        router: IndexedRouter,
        errors: ServerErrorMiddleware,
        observability: ObservabilityMiddleware,
        exceptions: ExceptionMiddleware,
    ) -> None:
        self.router = router
        self.errors = errors
        self.observability = observability
        self.exceptions = exceptions
        self.handlers = (exceptions._exception_handlers, exceptions._status_handlers)

    @classmethod
    def of(cls, stack: ASGIApp, router: Any) -> Lane | None:
        """The lane for a stack built the way :func:`fieldreport.app.create_app` builds it
        (server errors, observability, exceptions, the indexed router); None otherwise."""
        observability = getattr(stack, "app", None)
        exceptions = getattr(observability, "app", None)
        if (
            isinstance(stack, ServerErrorMiddleware)
            and isinstance(observability, ObservabilityMiddleware)
            and isinstance(exceptions, ExceptionMiddleware)
            and isinstance(router, IndexedRouter)
            and exceptions.app is router
        ):
            return cls(router, stack, observability, exceptions)
        return None

    async def server_error(
        self, exc: Exception, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """What Starlette's server error middleware does with ``exc`` (an answer only if the
        response has not started; it re-raises)."""
        errors = copy.copy(self.errors)
        errors.app = _raising(exc)
        # the observability middleware marks the scope as every response start passes it
        await errors(scope, receive, _nowhere if scope.get(ANSWERING) else send)

    async def handle(self, exc: Exception, scope: Scope, observed: Observed) -> None:
        """What Starlette's exception middleware does with ``exc``, inside the observability
        middleware (the answer counted and given the request id)."""
        if scope.get(ANSWERING):  # nothing more can be answered (Starlette may wrap it, see above)
            raise exc
        exceptions = copy.copy(self.exceptions)
        exceptions.app = _raising(exc)
        await exceptions(scope, observed.receive, observed.send)


class App(Starlette):
    """Starlette with the express lane (see the module's docstring)."""

    _lane: Lane | None = None

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        self._lane = Lane.of(stack, self.router)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            if self.middleware_stack is None:
                self.middleware_stack = self.build_middleware_stack()
            lane = self._lane
            if lane is not None:
                express = lane.router.express(scope["path"])
                if express is not None:
                    # the lane, inline: each coroutine of its own was a frame per request
                    route, params = express
                    scope["app"] = self
                    scope["starlette.exception_handlers"] = lane.handlers
                    lane.router.enter(scope, route, params)
                    observability = lane.observability
                    try:
                        observed = observability.begin(scope, receive, send)
                        try:
                            if route.observes_itself:
                                scope[OBSERVED] = observed
                                await route.app(scope, receive, send)
                            else:
                                await route.app(scope, observed.receive, observed.send)
                        except Exception as exc:
                            await lane.handle(exc, scope, observed)
                        finally:
                            observability.end(observed)
                    except Exception as exc:
                        await lane.server_error(exc, scope, receive, send)
                    return
        await super().__call__(scope, receive, send)
