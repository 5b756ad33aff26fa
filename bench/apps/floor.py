"""The floor: the ceiling's endpoint plus only the work an ingest endpoint cannot skip.

The ceiling (``bench/apps/bare.py``) reads the body and answers. fieldreport must also check
and store what it read before it answers 2xx. These endpoints, on the same stack (Starlette
on uvicorn, uvloop, httptools), read the body exactly as the ceiling does and then do only
that unavoidable part, through fieldreport's own parts, with nothing else of fieldreport
(no middleware, no keys, no form fields, no database, no answer body beyond the ceiling's):

- ``POST /reports``: the screenshot's bytes are cut out of the multipart body with two
  ``bytes.find`` calls (no form parser), then stored as fieldreport stores a screenshot:
  ``LocalBlobStore.create`` with its SHA-256 and the PNG chunk check (``check_png``) in the
  store's file thread, and made durable by the store's group flush (one ``syncfs`` for the
  requests waiting at that moment) before the answer.
- ``POST /reports/write``: the same without the SHA-256 and the PNG check: the durable write
  alone, the least any endpoint that keeps the screenshot must do.
- ``POST /sessions``: the batch is checked as fieldreport checks a web session batch
  (``fast_events_count``: msgspec proves it is a JSON array of objects), and not stored.

Whatever fieldreport does beyond this is overhead that could in principle go; this much
cannot while a 2xx means "checked and durable". So ``floor / ceiling`` is the most an ingest
endpoint built this way can reach against the ceiling, on this machine, in the same run.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.ingest.files import NotAnImage, check_png
from fieldreport.ingest.session_body import fast_events_count
from fieldreport.storage.blobs.local import LocalBlobStore

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


async def _store_screenshot(request: Request, *, checked: bool) -> Response:
    body = await request.body()
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    store: LocalBlobStore = request.app.state.store
    try:
        await store.create(f"floor/{uuid.uuid4().hex}", screenshot_of(body, boundary),
                           sha256=checked, check=check_png if checked else None)  # fmt: skip
    except NotAnImage:
        return JSONResponse({"ok": False}, status_code=400)
    await store.flush()
    return JSONResponse({"ok": True})


async def _session(request: Request) -> Response:
    if fast_events_count(await request.body()) is None:
        return JSONResponse({"ok": False}, status_code=400)
    return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.store = LocalBlobStore(Path(os.environ[DATA_DIR_ENV]))
    yield


app = Starlette(
    routes=[
        Route("/reports", _report, methods=["POST"]),
        Route("/reports/write", _report_write, methods=["POST"]),
        Route("/sessions", _session, methods=["POST"]),
    ],
    lifespan=_lifespan,
)
