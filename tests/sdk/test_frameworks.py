"""The SDK inside real apps (Starlette, FastAPI, Flask, a bare WSGI app) served on loopback,
shipping to a running fieldreport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fieldreport.sdk import (
    FieldreportASGIMiddleware,
    FieldreportClient,
    FieldreportHandler,
    FieldreportWSGIMiddleware,
    get_recording,
)
from fieldreport.state import AppState
from fieldreport.storage.backend_events import BackendEvent, list_events
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer
from tests.support.apps import serve_asgi, serve_wsgi
from tests.support.recordings import start_session

shop_log = logging.getLogger("tests.shop")


@pytest.fixture
async def handler(server: RunningServer, project: NewProject) -> AsyncIterator[FieldreportHandler]:
    h = FieldreportHandler(
        FieldreportClient(server.url, project.secret_key, origin="shop-1"), flush_interval=0.05
    )
    shop_log.addHandler(h)
    shop_log.setLevel(logging.INFO)
    yield h
    shop_log.removeHandler(h)
    await asyncio.to_thread(h.close)


async def _events(
    state: AppState, handler: FieldreportHandler, recording: str
) -> list[BackendEvent]:
    await asyncio.to_thread(handler.flush, 10)
    async with state.db.read() as conn:
        return await list_events(conn, recording)


async def _exercise(
    base: str, state: AppState, project: NewProject, handler: FieldreportHandler, header: str
) -> None:
    recording = await start_session(state, project.project.id)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        ok = await http.get("/checkout", headers={header: recording})
        assert ok.status_code == 200 and ok.text == recording  # the app sees the recording
        boom = await http.get("/boom", headers={header: recording})
        assert boom.status_code == 500
        unrecorded = await http.get("/checkout")
        assert unrecorded.status_code == 200 and unrecorded.text == "none"
    events = await _events(state, handler, recording)
    logs = [e for e in events if e.type == "log"]
    exceptions = [e for e in events if e.type == "exception"]
    assert [e.title for e in logs] == ["charging card for order 7"]
    assert logs[0].origin == "shop-1" and logs[0].level == "info"
    assert len(exceptions) == 1  # sent once, whether logged by the framework or not
    assert exceptions[0].title == "ValueError"
    assert "card declined" in exceptions[0].payload
    assert "Traceback (most recent call last)" in exceptions[0].payload
    assert handler.stats().dropped == 0


def _checkout() -> str:
    shop_log.info("charging card for order %d", 7)
    return get_recording() or "none"


def _boom() -> str:
    raise ValueError("card declined")


async def test_starlette(
    server: RunningServer, state: AppState, project: NewProject, handler: FieldreportHandler
) -> None:
    async def checkout(request: Request) -> Response:
        return PlainTextResponse(_checkout())

    async def boom(request: Request) -> Response:
        return PlainTextResponse(_boom())

    app = Starlette(routes=[Route("/checkout", checkout), Route("/boom", boom)])
    wrapped = FieldreportASGIMiddleware(app, handler=handler)
    async with serve_asgi(wrapped) as base:
        await _exercise(base, state, project, handler, "br-recording-uuid")


async def test_fastapi_sync_endpoints(
    server: RunningServer, state: AppState, project: NewProject, handler: FieldreportHandler
) -> None:
    app = FastAPI()
    # sync endpoints run in a thread pool: the recording must follow them there
    app.get("/checkout", response_class=PlainTextResponse)(_checkout)
    app.get("/boom")(_boom)
    app.add_middleware(FieldreportASGIMiddleware, handler=handler)
    async with serve_asgi(app) as base:
        await _exercise(base, state, project, handler, "X-Fieldreport-Recording")


async def test_flask(
    server: RunningServer, state: AppState, project: NewProject, handler: FieldreportHandler
) -> None:
    app = Flask("tests.shop.flask")
    app.get("/checkout")(_checkout)
    app.get("/boom")(_boom)
    # Flask turns the exception into a 500 page and logs it: the handler ships that record.
    app.logger.addHandler(handler)
    app.wsgi_app = FieldreportWSGIMiddleware(app.wsgi_app, handler=handler)  # type: ignore[method-assign]
    try:
        with serve_wsgi(app) as base:
            await _exercise(base, state, project, handler, "br-recording-uuid")
    finally:
        app.logger.removeHandler(handler)


async def test_bare_wsgi_app_exception_escaping(
    server: RunningServer, state: AppState, project: NewProject, handler: FieldreportHandler
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/boom":
            _boom()
        body = _checkout().encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    def catch_500(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            return wrapped(environ, start_response)
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"failed"]

    wrapped = FieldreportWSGIMiddleware(app, handler=handler)
    with serve_wsgi(catch_500) as base:
        await _exercise(base, state, project, handler, "br-recording-uuid")
