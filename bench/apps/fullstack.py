"""fieldreport's app plus a bare endpoint that only reads the body, in one process: the
full-stack benchmark compares them on the same server stack (uvicorn, middleware, loop).

Settings come from FIELDREPORT_* environment variables, as for ``fieldreport serve``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.app import create_app
from fieldreport.settings import Settings


async def bare(request: Request) -> Response:
    await request.body()
    return JSONResponse({"ok": True})


app = create_app(Settings())
app.router.routes.append(Route("/bench/bare", bare, methods=["POST"]))
