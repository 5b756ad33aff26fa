"""The express lane answers exactly what the full middleware stack answers, errors included."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from fieldreport.app import create_app
from fieldreport.express import App
from fieldreport.ingest import fullstack, sessions
from fieldreport.metrics import OBSERVED
from fieldreport.routing import EXPRESS_PATHS, IndexedRouter, asgi_route
from fieldreport.settings import Settings

FAILURES: dict[str, Exception] = {
    "http": HTTPException(418, "teapot"),
    "unavailable": OSError(errno.ECONNREFUSED, "refused"),
    "bug": RuntimeError("a bug"),
}


async def _failing(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    kind = scope["headers"][0][1].decode()
    if kind == "late":  # the response has started: nothing more can be answered
        observed = scope.get(OBSERVED)  # there when its route observes itself
        if observed is None:
            await send({"type": "http.response.start", "status": 201, "headers": []})
        else:
            await send(observed.start(201, []))
        raise RuntimeError("a bug after the answer started")
    raise FAILURES[kind]


async def _endpoint(request: Any) -> Any:  # the documented endpoint; never called
    raise AssertionError


class _Stacked:
    """``_failing`` as a plain Starlette route's ASGI app: the router and every middleware."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _failing(scope, receive, send)


def _app(tmp_path: Path) -> App:
    app = create_app(Settings(data_dir=tmp_path, public_url="http://x.test"))
    assert isinstance(app, App)
    # the same ASGI app three times: at a literal path and behind a path parameter
    # (express), and as an ordinary route (the router and every middleware)
    app.router.routes[:0] = [
        asgi_route("/t/express", _endpoint, _failing),
        asgi_route("/t/param/{name}", _endpoint, _failing),
        # given the server's receive and send (it would report its own bytes and start)
        asgi_route("/t/self", _endpoint, _failing, observes_itself=True),
        Route("/t/{name}", _Stacked(), methods=["POST"]),
    ]
    return app


async def _call(app: App, path: str, kind: str) -> tuple[list[Message], BaseException | None]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"x-kind", kind.encode()), (b"x-request-id", b"rid-1")],
    }
    raised = None
    try:
        await app(scope, receive, send)
    except Exception as exc:
        raised = exc
    return sent, raised


def test_the_express_routes_are_the_plain_asgi_routes(tmp_path: Path) -> None:
    app = _app(tmp_path)
    router = app.router
    assert isinstance(router, IndexedRouter)
    send = router.express("/api/fullstack/v1/send")
    assert send is not None and send[0].app is fullstack.send_asgi and send[1] == {}
    assert router.express("/t/express") is not None
    append = router.express("/v1/web/append")
    assert append is not None and append[1] == {"platform": "web"}
    assert append[0].app is sessions.routes[1].app
    assert router.express("/t/param/x") == (router.routes[1], {"name": "x"})
    assert router.express("/t/self") == (router.routes[2], {})
    for path in ("/api/fullstack/v1/send-batch", "/t/other", "/api/v1/reports", "/v1/web/start"):
        assert router.express(path) is None
    # a route first in line that takes POST at the same path wins, as with the router
    router.routes.insert(0, Route("/t/express", _endpoint, methods=["POST"]))
    router.routes.insert(0, Route("/v1/{platform}/append", _endpoint, methods=["POST"]))
    assert router.express("/t/express") is None
    assert router.express("/v1/web/append") is None


def test_parameterised_paths_remembered_are_bounded(tmp_path: Path) -> None:
    router = _app(tmp_path).router
    assert isinstance(router, IndexedRouter)
    for n in range(EXPRESS_PATHS + 10):
        router.express(f"/t/param/{n}")
    assert router.express(f"/t/param/{EXPRESS_PATHS + 5}") is None  # past the bound: the router
    assert router.express("/t/param/3") == (router.routes[1], {"name": "3"})


@pytest.mark.parametrize("kind", sorted(FAILURES))
async def test_errors_answer_as_through_the_middleware(tmp_path: Path, kind: str) -> None:
    app = _app(tmp_path)
    express, express_raised = await _call(app, "/t/express", kind)
    stacked, stacked_raised = await _call(app, "/t/stacked", kind)
    param, param_raised = await _call(app, "/t/param/x", kind)
    itself, itself_raised = await _call(app, "/t/self", kind)
    assert express == stacked == param == itself
    # a handled error's answer carries the request id (a server error's 500 is answered
    # outside the observability middleware, as in Starlette's stack)
    assert ((b"x-request-id", b"rid-1") in express[0]["headers"]) is (kind != "bug")
    assert express[0]["status"] == {"http": 418, "unavailable": 503, "bug": 500}[kind]
    assert type(express_raised) is type(stacked_raised)
    assert (express_raised is None) is (kind != "bug")
    assert type(param_raised) is type(stacked_raised) is type(itself_raised)
    counted = {key[1:]: n for key, (n, _) in app.state.metrics.http.requests.items()}
    assert counted == {("POST", express[0]["status"]): 4}


async def test_an_error_after_the_response_started_sends_nothing_more(tmp_path: Path) -> None:
    app = _app(tmp_path)
    express, express_raised = await _call(app, "/t/express", "late")
    stacked, stacked_raised = await _call(app, "/t/stacked", "late")
    itself, itself_raised = await _call(app, "/t/self", "late")
    assert express == stacked == itself
    assert express[0]["headers"] == [(b"x-request-id", b"rid-1")]
    assert [m["type"] for m in express] == ["http.response.start"]
    assert express[0]["status"] == 201
    assert type(express_raised) is type(stacked_raised) is type(itself_raised) is RuntimeError
    counted = {key[1:]: n for key, (n, _) in app.state.metrics.http.requests.items()}
    assert counted == {("POST", 201): 3}
