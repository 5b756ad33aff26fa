"""A Starlette router that does not try every route on every request.

Starlette's :class:`~starlette.routing.Router` tries its routes in order and takes the first
full match (else the first partial match, which becomes a 405). With some fifty routes, an
ingest request paid for a regex match against most dashboard and API routes before reaching
its own. :class:`IndexedRouter` keeps exactly that rule but only tries the routes that can
match the request's path at all:

- a request whose path is the literal path of some route tries only the routes that match
  that path (worked out once, by matching the routes' own regexes against it);
- any other request tries the routes whose first path segment is the request's, plus the
  routes whose first segment is not a literal (a parameter, a host route, a root mount);
- what finds no route there (404s, trailing-slash redirects, other scope types) goes to
  Starlette's own loop over every route, unchanged.

The candidates are tried in their original order, so the route chosen, ``scope["route"]``,
``scope["endpoint"]``, path parameters and 405s are the same as with the plain router. The
index is rebuilt when routes are added to or removed from ``router.routes``; code that
replaces a route in place must call :meth:`IndexedRouter.reindex`.

The index also names the *express* routes (:meth:`IndexedRouter.express`): plain ASGI routes
that a POST's path goes to, which :mod:`fieldreport.express` calls without the router at all.
For a literal path that is worked out with the index; for a path that a route's parameters
match (``/v1/web/append``), the router's choice for that path is remembered, for a bounded
number of paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

_ANY = None  # the first segment of a route that can match paths with any first segment


def _first_segment(path: str) -> str:
    return path[1:].split("/", 1)[0] if path.startswith("/") else ""


def _route_head(route: BaseRoute) -> str | None:
    """The literal first path segment every path ``route`` matches has, or ``None``."""
    if not isinstance(route, Route | Mount | WebSocketRoute):
        return _ANY
    path = route.path
    if not path.startswith("/"):  # a root mount ("") matches everything
        return _ANY
    head = _first_segment(path)
    return _ANY if "{" in head else head


def _could_match(route: BaseRoute, path: str) -> bool:
    """Whether ``route`` can match a request for ``path`` (for some method)."""
    if isinstance(route, Route | Mount | WebSocketRoute):
        return route.path_regex.match(path) is not None
    return True


class AsgiRoute(Route):
    """A route served by a plain ASGI app (see :func:`asgi_route`)."""

    observes_itself = False


def asgi_route(
    path: str, endpoint: Callable[..., Any], app: ASGIApp, *, observes_itself: bool = False
) -> AsgiRoute:
    """A POST route documented (OpenAPI) and labelled (metrics: ``scope["endpoint"]``) by
    ``endpoint``, served by the plain ASGI ``app`` (matching, path parameters and 405s stay
    Starlette's). At a literal path it is an express route (:meth:`IndexedRouter.express`).
    ``observes_itself``: on the express lane, ``app`` reports its body bytes and response
    start to the :class:`~fieldreport.metrics.Observed` in its scope when one is there
    (see there), and the observability middleware does not wrap its ``receive`` and ``send``."""
    route = AsgiRoute(path, endpoint, methods=["POST"])
    route.app = app
    route.observes_itself = observes_itself
    return route


Express = tuple[AsgiRoute, dict[str, Any]]  # the route and the path parameters it matched
EXPRESS_PATHS = 256  # parameterised paths whose choice is remembered (a bound: paths are input)


def _express_choice(candidates: list[BaseRoute] | None, path: str) -> Express | None:
    """What the router does with a POST to ``path``: the first of ``candidates`` (in the
    router's order) that fully matches, if that is an :class:`AsgiRoute`; with the path
    parameters it matched. Anything else (a mount, another kind of route) has none."""
    if not candidates:
        return None
    scope: Scope = {"type": "http", "method": "POST", "path": path, "root_path": ""}
    for route in candidates:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return (route, child_scope["path_params"]) if isinstance(route, AsgiRoute) else None
    return None


class IndexedRouter(Router):
    _indexed: tuple[int, int] = (0, -1)
    _exact: dict[str, list[BaseRoute]]
    _by_head: dict[str, list[BaseRoute]]
    _express: dict[str, Express | None]

    def express(self, path: str) -> Express | None:
        """The plain ASGI route a POST to ``path`` (the route path: no root path) goes to,
        when it is one (the first route taking POST whose pattern matches is an
        :class:`AsgiRoute`), with the path parameters it matched. The caller may hand the
        request straight to ``route.app`` after setting what the router would set
        (:meth:`enter`)."""
        if self._indexed != (id(self.routes), len(self.routes)):
            self.reindex()
        express = self._express
        if path in express:
            return express[path]
        if len(express) >= len(self._exact) + EXPRESS_PATHS:
            return None  # too many paths to remember: the router decides
        chosen = _express_choice(self._by_head.get(_first_segment(path)), path)
        express[path] = chosen
        return chosen

    def enter(self, scope: Scope, route: Route, params: dict[str, Any]) -> None:
        """Set in ``scope`` what routing ``route`` with path parameters ``params`` sets."""
        if "router" not in scope:
            scope["router"] = self
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {**scope.get("path_params", {}), **params}

    def reindex(self) -> None:
        """Recompute which routes each path tries (from ``self.routes``)."""
        routes = self.routes
        heads = [_route_head(route) for route in routes]
        by_head: dict[str, list[BaseRoute]] = {}
        for head in {h for h in heads if h is not None}:
            by_head[head] = [r for r, h in zip(routes, heads, strict=True) if h in (head, _ANY)]
        exact: dict[str, list[BaseRoute]] = {}
        for route in routes:
            if isinstance(route, Route) and "{" not in route.path and route.path not in exact:
                path = route.path
                bucket = by_head.get(_first_segment(path), [])
                exact[path] = [r for r in bucket if _could_match(r, path)]
        express: dict[str, Express | None] = {}
        for path, candidates in exact.items():
            express[path] = _express_choice(candidates, path)
        self._exact, self._by_head, self._express = exact, by_head, express
        self._indexed = (id(routes), len(routes))

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        if self._indexed != (id(self.routes), len(self.routes)):
            self.reindex()
        route_path = get_route_path(scope)
        candidates = self._exact.get(route_path)
        if candidates is None:
            candidates = self._by_head.get(_first_segment(route_path))
            if candidates is None:
                await super().app(scope, receive, send)
                return
        if "router" not in scope:
            scope["router"] = self
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in candidates:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        await super().app(scope, receive, send)  # not found: redirect slashes or 404 as usual
