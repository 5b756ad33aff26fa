"""The indexed router chooses exactly the route Starlette's router chooses, for the app's
real routes: same route, same path parameters, same 404s, 405s and slash redirects."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Message, Receive, Scope, Send

from fieldreport.app import build_routes
from fieldreport.routing import IndexedRouter

METHODS = ("GET", "POST", "OPTIONS", "DELETE", "PUT")


def _sample_paths(routes: list[BaseRoute]) -> list[str]:
    """Each route's path with its parameters filled in, its slash variants, and misses."""
    values = {"int": "7", "path": "a/b.css", "str": "web", "float": "1.5", "uuid": "0" * 32}
    paths = {
        "/",
        "",
        "/robots.txt",
        "/nope",
        "/api/nope",
        "/v1/web/nope",
        "/static",
        "/api/v1/reports/",
    }
    for route in routes:
        if isinstance(route, Route | Mount):
            template = route.path + ("/x.js" if isinstance(route, Mount) else "")
            path = re.sub(r"{(\w+)(?::(\w+))?}", lambda m: values[m.group(2) or "str"], template)
            paths |= {path, path + "/", path.rstrip("/") + "x", "/x" + path}
    return sorted(paths)


async def _choose(router: Router, path: str, method: str, root_path: str = "") -> Any:
    """What ``router`` does with a request: the route it hands it to (and the path
    parameters), or the response it answers itself (404, redirect)."""
    chosen: list[Any] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            chosen.append(("answered", message["status"], dict(message["headers"])))

    scope: Scope = {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "scheme": "http",
        "server": ("testserver", 80),
    }
    await router.app(scope, receive, send)
    if "route" in scope:
        chosen.append((scope["route"], scope.get("endpoint"), scope.get("path_params")))
    return chosen


def _recording(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Copies of the routes, each answering 299 instead of running its endpoint (the
    originals are module-level lists other tests serve)."""

    async def handled(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("", status_code=299)(scope, receive, send)

    copies = [copy.copy(route) for route in routes]
    for route in copies:
        if isinstance(route, Route | Mount):
            route.app = handled  # type: ignore[misc,assignment]
    return copies


def _plain_text(request: Request) -> Response:
    return PlainTextResponse("")


@pytest.mark.parametrize("root_path", ["", "/prefix"])
@pytest.mark.parametrize("wildcard", [False, True])
async def test_indexed_router_chooses_what_starlette_chooses(
    root_path: str, wildcard: bool
) -> None:
    """``wildcard``: plus routes whose first path segment is a parameter, first and last."""
    extra = [Route("/{name}.txt", _plain_text), Route("/{name}", _plain_text, methods=["PUT"])]
    routes = _recording(extra[:1] + build_routes() + extra[1:] if wildcard else build_routes())
    plain, indexed = Router(routes), IndexedRouter(routes)
    compared = 0
    for path in _sample_paths(routes):
        for method in METHODS:
            expected = await _choose(plain, path, method, root_path)
            assert await _choose(indexed, path, method, root_path) == expected, (method, path)
            compared += 1
    assert compared > 400
    # the samples reach routes, 405s, 404s and redirects alike
    seen = {c[0][1] for c in [await _choose(plain, p, "POST") for p in _sample_paths(routes)]}
    assert {299, 404, 307} <= {s for s in seen if isinstance(s, int)}


async def test_routes_added_later_are_found() -> None:
    async def late(request: Request) -> Response:
        return PlainTextResponse("late")

    router = IndexedRouter(_recording(build_routes()))
    assert (await _choose(router, "/bench/late", "POST"))[0][1] == 404
    router.routes.append(Route("/bench/late", late, methods=["POST"]))
    assert (await _choose(router, "/bench/late", "POST"))[0][1] == 200
    router.routes.pop()
    assert (await _choose(router, "/bench/late", "POST"))[0][1] == 404
