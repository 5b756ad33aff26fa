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
from fieldreport.ingest import fullstack
from fieldreport.routing import IndexedRouter, asgi_route
from fieldreport.settings import Settings

FAILURES: dict[str, Exception] = {
    "http": HTTPException(418, "teapot"),
    "unavailable": OSError(errno.ECONNREFUSED, "refused"),
    "bug": RuntimeError("a bug"),
}


async def _failing(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise FAILURES[scope["headers"][0][1].decode()]


async def _endpoint(request: Any) -> Any:  # the documented endpoint; never called
    raise AssertionError


def _app(tmp_path: Path) -> App:
    app = create_app(Settings(data_dir=tmp_path, public_url="http://x.test"))
    assert isinstance(app, App)
    # the same ASGI app twice: at a literal path (express) and behind a path parameter
    # (the router and every middleware, as any other route)
    app.router.routes[:0] = [
        asgi_route("/t/express", _endpoint, _failing),
        asgi_route("/t/{name}", _endpoint, _failing),
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


def test_the_express_routes_are_the_plain_asgi_routes_at_literal_paths(tmp_path: Path) -> None:
    app = _app(tmp_path)
    router = app.router
    assert isinstance(router, IndexedRouter)
    send = router.express("/api/fullstack/v1/send")
    assert send is not None and send.app is fullstack.send_asgi
    assert router.express("/t/express") is not None
    for path in ("/v1/web/append", "/api/fullstack/v1/send-batch", "/t/other", "/api/v1/reports"):
        assert router.express(path) is None
    # a route first in line that takes POST at the same path wins, as with the router
    router.routes.insert(0, Route("/t/express", _endpoint, methods=["POST"]))
    assert router.express("/t/express") is None


@pytest.mark.parametrize("kind", sorted(FAILURES))
async def test_errors_answer_as_through_the_middleware(tmp_path: Path, kind: str) -> None:
    app = _app(tmp_path)
    express, express_raised = await _call(app, "/t/express", kind)
    stacked, stacked_raised = await _call(app, "/t/stacked", kind)
    assert express == stacked
    assert express[0]["status"] == {"http": 418, "unavailable": 503, "bug": 500}[kind]
    assert type(express_raised) is type(stacked_raised)
    assert (express_raised is None) is (kind != "bug")
    counted = {key[1:]: n for key, (n, _) in app.state.metrics.http.requests.items()}
    assert counted == {("POST", express[0]["status"]): 2}
