"""The floor: the ceiling's endpoint plus only the work an ingest endpoint cannot skip.

The ceiling (``bench/apps/bare.py``) reads the body and answers. fieldreport must also check
and store what it read before it answers 2xx. These endpoints, on the same stack (Starlette
on uvicorn, uvloop, httptools), read the body exactly as the ceiling does and then do only
that unavoidable part, through fieldreport's own parts, with nothing else of fieldreport
(no middleware, no keys, no form fields, no answer body beyond the ceiling's, and no
database but where a batch's row is its durable write):

- ``POST /reports``: the screenshot's bytes are cut out of the multipart body with two
  ``bytes.find`` calls (no form parser), then stored as fieldreport stores a screenshot:
  ``LocalBlobStore.create`` with its SHA-256 and the PNG chunk check (``check_png``) in the
  store's file thread, and made durable by the store's group flush (one ``syncfs`` for the
  requests waiting at that moment) before the answer.
- ``POST /reports/write``: the same without the SHA-256 and the PNG check: the durable write
  alone, the least any endpoint that keeps the screenshot must do.
- ``POST /reports/appended``: the screenshot cut out the same way, appended to one log file
  and made durable by a group ``fdatasync`` (as ``/sessions/appended`` below): no file per
  screenshot, the least any durable store of it must do.
- ``POST /sessions``: the batch is checked as fieldreport checks a web session batch
  (``fast_events_count``: msgspec proves it is a JSON array of objects), and not stored.
- ``POST /sessions/appended``: the same check, then the batch appended to one log file
  (``os.write`` on the event loop) and made durable by a group ``fdatasync`` (fieldreport's
  :class:`GroupFlush`: one call for the requests waiting at that moment) before the answer:
  the least any store of a batch must do (no deflate, no index, no counters).
- ``POST /sessions/stored``: the same check, then the batch stored as fieldreport stores a
  batch kept in its row: a :class:`BatchRecord` committed by fieldreport's batch writer
  (``record_batches``: the session's counters, the row deflated in the writer's thread, one
  SQLite transaction with ``synchronous=FULL`` shared by the requests waiting for it) into a
  database migrated like fieldreport's, under one session made at start-up. No token, rate
  limit, middleware or answer beyond the ceiling's: what is left of fieldreport's work is the
  HTTP app around it.

Whatever fieldreport does beyond this is overhead that could in principle go; this much
cannot while a 2xx means "checked and durable". So ``floor / ceiling`` is the most an ingest
endpoint built this way can reach against the ceiling, on this machine, in the same run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.gc_tuning import settle_after_startup
from fieldreport.ingest.files import NotAnImage, check_png
from fieldreport.ingest.session_body import fast_events_count
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.blobs.flush import GroupFlush
from fieldreport.storage.blobs.local import LocalBlobStore
from fieldreport.storage.projects import create_project
from fieldreport.storage.session_batches import BatchRecord, record_batches
from fieldreport.storage.sessions import NewSession, insert_session

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Where the stored screenshots go (set by ``bench.servers.floor``).
DATA_DIR_ENV = "FIELDREPORT_FLOOR_DATA_DIR"


def screenshot_of(body: bytes, boundary: bytes) -> bytes:
    """The PNG file part's bytes: from the PNG signature to the next boundary line."""
    start = body.find(PNG_SIGNATURE)
    end = body.find(b"\r\n--" + boundary, start)
    if start < 0 or end < 0:
        raise ValueError("no PNG part in the body")
    return body[start:end]


async def _report(request: Request) -> Response:
    return await _store_screenshot(request, checked=True)


async def _report_write(request: Request) -> Response:
    return await _store_screenshot(request, checked=False)


async def _request_screenshot(request: Request) -> bytes:
    """The request's body read as the ceiling reads it, and its screenshot cut out of it."""
    body = await request.body()
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    return screenshot_of(body, boundary)


async def _store_screenshot(request: Request, *, checked: bool) -> Response:
    shot = await _request_screenshot(request)
    store: LocalBlobStore = request.app.state.store
    try:
        await store.create(f"floor/{uuid.uuid4().hex}", shot, sha256=checked,
                           check=check_png if checked else None)  # fmt: skip
    except NotAnImage:
        return JSONResponse({"ok": False}, status_code=400)
    await store.flush()
    return JSONResponse({"ok": True})


async def _report_appended(request: Request) -> Response:
    shot = await _request_screenshot(request)
    log: AppendLog = request.app.state.log
    log.append(shot)
    await log.flush.flush()
    return JSONResponse({"ok": True})


async def _session(request: Request) -> Response:
    if fast_events_count(await request.body()) is None:
        return JSONResponse({"ok": False}, status_code=400)
    return JSONResponse({"ok": True})


async def _session_appended(request: Request) -> Response:
    body = await request.body()
    if fast_events_count(body) is None:
        return JSONResponse({"ok": False}, status_code=400)
    log: AppendLog = request.app.state.log
    log.append(body)
    await log.flush.flush()
    return JSONResponse({"ok": True})


class AppendLog:
    """One file that accepted bytes (session batches, screenshots) are appended to, made
    durable by group ``fdatasync`` calls."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.flush = GroupFlush(functools.partial(os.fdatasync, self.fd))

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        self.flush.close()
        os.close(self.fd)


@dataclass(frozen=True)
class SessionFloor:
    """fieldreport's state (SQLite in the floor's data directory) and the one session every
    ``/sessions/stored`` batch is counted on."""

    state: AppState
    session_id: str
    project_id: int


async def _session_stored(request: Request) -> Response:
    body = await request.body()
    if fast_events_count(body) is None:
        return JSONResponse({"ok": False}, status_code=400)
    floor: SessionFloor = request.app.state.sessions
    record = BatchRecord(floor.session_id, floor.project_id, False, datetime.now(UTC),
                         len(body), "", None, body)  # fmt: skip
    [seq] = await floor.state.writer.submit_many(record_batches, [record])
    if seq is None:
        raise RuntimeError("the floor's session is gone")
    return JSONResponse({"ok": True})


async def open_session_floor(data_dir: Path) -> SessionFloor:
    """fieldreport's state on SQLite under ``data_dir`` (migrated), with one web session."""
    state = await open_state(Settings(data_dir=data_dir, log_level="warning"))
    async with state.db.write() as conn:
        project = await create_project(conn, "floor")
        session_id = uuid.uuid4().hex
        await insert_session(conn, NewSession(session_id, project.project.id, "web",
                                              "floor-user", datetime.now(UTC)))  # fmt: skip
    return SessionFloor(state, session_id, project.project.id)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    data = Path(os.environ[DATA_DIR_ENV])
    app.state.store = LocalBlobStore(data)
    app.state.sessions = await open_session_floor(data / "sessions")
    app.state.log = AppendLog(data / "appended.log")
    settle_after_startup()  # the garbage collector as `fieldreport serve` sets it up
    try:
        yield
    finally:
        app.state.log.close()
        await app.state.sessions.state.close()


app = Starlette(
    routes=[
        Route("/reports", _report, methods=["POST"]),
        Route("/reports/write", _report_write, methods=["POST"]),
        Route("/reports/appended", _report_appended, methods=["POST"]),
        Route("/sessions", _session, methods=["POST"]),
        Route("/sessions/appended", _session_appended, methods=["POST"]),
        Route("/sessions/stored", _session_stored, methods=["POST"]),
    ],
    lifespan=_lifespan,
)
