"""CPU per request of the HTTP path, driven in-process (no sockets, no server):

    python -m bench.asgi_cpu [-n 20000] [--rounds 5]

Each case calls an ASGI app directly with a synthetic scope/receive/send and measures
``time.process_time()`` per request, so the number does not depend on what else the machine
runs. Cases: the bare endpoint alone (the ceiling's Starlette app), the same endpoint inside
fieldreport's app (appended last, as ``bench.apps.fullstack`` does), and the same endpoint
put at the hot ingest paths (``/api/fullstack/v1/send``, ``/v1/web/append``,
``/api/v1/reports``) so that routing to them is measured without their database work.
Run it with two checkouts' ``src`` on ``PYTHONPATH`` (one after the other, alternating)
to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from bench import payloads

BODY = payloads.fullstack_event("0" * 32)


async def _read(request: Request) -> Response:
    await request.body()
    return JSONResponse({"ok": True})


def _bare() -> ASGIApp:
    from bench.apps.bare import starlette_app

    return starlette_app


def _with_bare_at(paths: list[str]) -> Callable[[], ASGIApp]:
    """fieldreport's app where the routes at ``paths`` answer like the bare endpoint."""

    def build() -> ASGIApp:
        from fieldreport import app as app_module
        from fieldreport.ingest import fullstack, reports, sessions
        from fieldreport.settings import Settings

        saved = (fullstack.routes, sessions.routes, reports.routes)
        for module in (fullstack, sessions, reports):
            module.routes = [  # type: ignore[attr-defined]
                Route(r.path, _read, methods=list(r.methods or ()))
                if isinstance(r, Route) and r.path in paths and "OPTIONS" not in (r.methods or ())
                else r
                for r in module.routes
            ]
        try:
            data = tempfile.mkdtemp(prefix="asgi-cpu-")
            app = app_module.create_app(Settings(data_dir=data, log_level="warning"))
        finally:
            fullstack.routes, sessions.routes, reports.routes = saved
        app.router.routes.append(Route("/bench/bare", _read, methods=["POST"]))
        return app

    return build


CASES: dict[str, tuple[Callable[[], ASGIApp], str]] = {
    "bare alone": (_bare, "/ingest"),
    "bare in app (last route)": (_with_bare_at([]), "/bench/bare"),
    "bare at /api/fullstack/v1/send": (
        _with_bare_at(["/api/fullstack/v1/send"]),
        "/api/fullstack/v1/send",
    ),
    "bare at /v1/{platform}/append": (_with_bare_at(["/v1/{platform}/append"]), "/v1/web/append"),
    "bare at /api/v1/reports": (_with_bare_at(["/api/v1/reports"]), "/api/v1/reports"),
}


def _scope(app: ASGIApp, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _drive(app: ASGIApp, path: str, n: int) -> float:
    """CPU seconds per request over ``n`` requests."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    base = _scope(app, path)
    for _ in range(200):  # warm up (lazy middleware stack, caches)
        await app(dict(base), receive, send)
    statuses.clear()
    started = time.process_time()
    for _ in range(n):
        await app(dict(base), receive, send)
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: unexpected statuses {sorted(set(statuses))}")
    return spent / n


async def run(n: int, rounds: int, only: str | None) -> dict[str, float]:
    apps = {name: (build(), path) for name, (build, path) in CASES.items()}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, (app, path) in apps.items():
            if only and only not in name:
                continue
            per = await _drive(app, path, n)
            best[name] = min(best.get(name, per), per)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ.setdefault("FIELDREPORT_LOG_LEVEL", "warning")
    best = asyncio.run(run(args.n, args.rounds, args.only))
    if args.json:
        print(json.dumps({k: round(v * 1e6, 2) for k, v in best.items()}))
        return
    bare = best.get("bare alone")
    for name, per in best.items():
        ratio = f"  ratio {bare / per:.2f}" if bare else ""
        print(f"{name:34s} {per * 1e6:7.1f} us/request (best of rounds){ratio}")


if __name__ == "__main__":
    main()
