"""A minimal push receiver for the delivery benchmark: reads each body, answers 200 "ok", and
remembers when each report arrived (``GET /stats``).

    python -m bench.apps.sink PORT
"""

from __future__ import annotations

import re
import sys
import time

from aiohttp import web

REPORTID = re.compile(rb'name="reportid"\r\n\r\n([0-9a-f-]{36})')
arrivals: dict[str, float] = {}
count = 0


async def push(request: web.Request) -> web.Response:
    global count
    body = await request.read()
    count += 1
    match = REPORTID.search(body)
    if match:
        arrivals.setdefault(match.group(1).decode(), time.time())
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"count": count, "arrivals": arrivals})


async def reset(request: web.Request) -> web.Response:
    global count
    count = 0
    arrivals.clear()
    return web.Response(text="reset")


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/push", push)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
