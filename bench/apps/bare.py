"""Bare endpoints that only read the body: the framework ceilings fieldreport is compared to."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def _read(request: Request) -> Response:
    await request.body()
    return JSONResponse({"ok": True})


starlette_app = Starlette(routes=[Route("/ingest", _read, methods=["POST"])])

fastapi_app = FastAPI()


@fastapi_app.post("/ingest")
async def fastapi_read(request: FastAPIRequest) -> dict[str, bool]:
    await request.body()
    return {"ok": True}
