"""Prometheus metrics (``/metrics``) and the request-id middleware.

One pure ASGI middleware does both, cheaply: it counts requests and ingest bytes by route
template (bounded label values), times requests, and gives every request an id (the
client's ``X-Request-ID`` when it is sane, else a new one) that is logged and echoed.
Gauges that need the database (outbox depth, oldest pending delivery, leases) are collected
at scrape time by callbacks registered with :meth:`Metrics.add_collector`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldreport.logs import request_id

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
Collector = Callable[[], Awaitable[None]]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fieldreport_http_requests",
            "HTTP requests by route and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.ingest_bytes = Counter(
            "fieldreport_ingest_bytes",
            "Request body bytes received, by route.",
            ["endpoint"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "fieldreport_http_request_duration_seconds",
            "Time to answer a request, by route.",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self._collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        """Run ``collector`` before each scrape (to refresh gauges from the database)."""
        self._collectors.append(collector)

    async def render(self) -> bytes:
        for collector in self._collectors:
            await collector()
        return generate_latest(self.registry)


def route_templates(routes: list[BaseRoute], prefix: str = "") -> dict[Any, str]:
    """Map endpoint callables to their path templates (the metric label)."""
    out: dict[Any, str] = {}
    for route in routes:
        if isinstance(route, Route):
            out.setdefault(route.endpoint, prefix + route.path)
        elif isinstance(route, Mount):
            out.setdefault(route.app, prefix + route.path)
            out.update(route_templates(list(route.routes), prefix + route.path))
    return out


class _RouteSeries:
    """The label children of one route (``labels()`` looks them up under a lock each time)."""

    __slots__ = ("bytes", "duration", "endpoint", "requests")

    def __init__(self, metrics: Metrics, endpoint: str) -> None:
        self.endpoint = endpoint
        self.bytes = metrics.ingest_bytes.labels(endpoint)
        self.duration = metrics.duration.labels(endpoint)
        self.requests: dict[tuple[str, int], Counter] = {}


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[Any, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates
        # per route template: its children; bounded like the labels (templates, methods)
        self._series: dict[str, _RouteSeries] = {}

    def _route(self, endpoint: str) -> _RouteSeries:
        series = self._series.get(endpoint)
        if series is None:
            series = self._series[endpoint] = _RouteSeries(self.metrics, endpoint)
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _REQUEST_ID_RE.match(incoming) else os.urandom(16).hex()
        token = request_id.set(rid)
        started = time.perf_counter()
        received = 0
        status = 500

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        finally:
            series = self._route(self.templates.get(scope.get("endpoint"), "other"))
            key = (scope["method"], status)
            counter = series.requests.get(key)
            if counter is None:
                counter = self.metrics.requests.labels(series.endpoint, key[0], str(status))
                series.requests[key] = counter
            counter.inc()
            if received:
                series.bytes.inc(received)
            series.duration.observe(time.perf_counter() - started)
            request_id.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics.
    ---
    summary: Prometheus metrics
    tags: [ops]
    responses:
      200: {description: "Metrics in the Prometheus text format."}
      401: {description: "FIELDREPORT_METRICS_TOKEN is set and the bearer token does not match."}
    """
    state = request.app.state.fieldreport
    token = state.settings.metrics_token
    if token is not None:
        header = request.headers.get("authorization", "")
        import hmac

        if not hmac.compare_digest(header.encode(), f"Bearer {token.get_secret_value()}".encode()):
            return Response("unauthorized\n", status_code=401, media_type="text/plain")
    metrics: Metrics = request.app.state.metrics
    return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)
