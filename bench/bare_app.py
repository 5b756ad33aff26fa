"""The framework ceiling: a Starlette endpoint that only reads the body, on the same stack as
``fieldreport serve`` (uvicorn, uvloop, httptools, one worker).

    python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def append(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"seq": size})


app = Starlette(routes=[Route("/v1/{platform}/append", append, methods=["POST"])])


async def main(port: int) -> None:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", server_header=False, lifespan="on"
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
