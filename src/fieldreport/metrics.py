"""Prometheus metrics (``/metrics``) and the request-id middleware.

One pure ASGI middleware does both, cheaply: it counts requests and ingest bytes by route
template (bounded label values), times requests, and gives every request an id (the
client's ``X-Request-ID`` when it is sane, else a new one) that is logged and echoed.
Gauges that need the database (outbox depth, oldest pending delivery, leases) are collected
at scrape time by callbacks registered with :meth:`Metrics.add_collector`.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fieldreport.logs import request_id
from fieldreport.randomids import new_hex_id

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ScrapeHook = Callable[[], Awaitable[None]]
#: What answers an exception of the app: (exception, scope, receive, send, response started).
OnError = Callable[[Exception, Scope, Receive, Send, bool], Awaitable[None]] | None


_REQUESTS = ("fieldreport_http_requests", "HTTP requests by route and status code.")
_BYTES = ("fieldreport_ingest_bytes", "Request body bytes received, by route.")
_DURATION = ("fieldreport_http_request_duration_seconds", "Time to answer a request, by route.")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_BOUNDS = (*(float(b) for b in DURATION_BUCKETS), math.inf)
_LE = tuple(floatToGoString(b) for b in _BOUNDS)  # type: ignore[no-untyped-call]


class _RouteSeries:
    """One route template's byte count and duration histogram (per-bucket counts)."""

    __slots__ = ("buckets", "bytes", "created", "endpoint", "sum")

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.bytes = 0
        self.buckets = [0] * len(_BOUNDS)
        self.sum = 0.0
        self.created = time.time()


class HttpMetrics(Collector):
    """The HTTP metrics (requests by route, method and status; body bytes and answer times
    by route), counted in plain Python numbers and turned into samples at scrape time.

    prometheus_client's ``Counter.inc`` and ``Histogram.observe`` take a lock and check
    their arguments on every call (~3 µs of each request in three calls); only the event
    loop counts here, so plain numbers are enough. The samples are the ones those classes
    expose, names, labels, values and order (``_created`` included unless disabled).
    """

    def __init__(self) -> None:
        self.routes: dict[str, _RouteSeries] = {}
        # (endpoint, method, status) -> [count, created]; bounded like the labels
        self.requests: dict[tuple[str, str, int], list[float]] = {}

    def route(self, endpoint: str) -> _RouteSeries:
        series = self.routes.get(endpoint)
        if series is None:
            series = self.routes[endpoint] = _RouteSeries(endpoint)
        return series

    def record(
        self, endpoint: str, method: str, status: int, received: int, seconds: float
    ) -> None:
        """One answered request."""
        series = self.routes.get(endpoint) or self.route(endpoint)
        key = (endpoint, method, status)
        counted = self.requests.get(key)
        if counted is None:
            counted = self.requests[key] = [0, time.time()]
        counted[0] += 1
        series.bytes += received
        series.buckets[bisect_left(_BOUNDS, seconds)] += 1
        series.sum += seconds

    def _families(self) -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(*_REQUESTS, labels=("endpoint", "method", "status")),
            CounterMetricFamily(*_BYTES, labels=("endpoint",)),
            HistogramMetricFamily(*_DURATION, labels=("endpoint",)),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        created = getattr(prometheus_metrics, "_use_created", True)  # disable_created_metrics()
        requests, received, duration = self._families()
        for (endpoint, method, status), (count, since) in self.requests.items():
            requests.add_metric([endpoint, method, str(status)], count, since if created else None)
        for series in self.routes.values():
            received.add_metric(
                [series.endpoint], series.bytes, series.created if created else None
            )
        for series in self.routes.values():
            cumulative = list(zip(_LE, itertools.accumulate(series.buckets), strict=True))
            duration.add_metric([series.endpoint], cumulative, series.sum)
            if created:
                labels = {"endpoint": series.endpoint}
                duration.samples.append(
                    Sample(duration.name + "_created", labels, series.created, None, None)
                )
        return (requests, received, duration)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics()
        self.registry.register(self.http)
        self._collectors: list[ScrapeHook] = []

    def add_collector(self, collector: ScrapeHook) -> None:
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


#: Set (True) in a request's scope once its response has started, by the observability
#: middleware as the start goes out: the express lane reads it (rather than wrapping ``send``
#: once more, a coroutine per message) to know whether an error can still be answered.
ANSWERING = "fieldreport.answering"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[Any, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp | None = None,
        on_error: OnError = None,
    ) -> None:
        """Run the wrapped app (or ``app``) with the request's id, counted and timed.

        The express lane (:mod:`fieldreport.express`) passes a route's ``app`` and
        ``on_error``, which answers an exception ``app`` raises as the exception middleware
        inside this one would; it is called with the exception, the request and whether
        the response had started. (Arguments rather than a second method: one call level
        less on every request.)"""
        if app is None:
            app = self.app
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":  # the first one, if sane
                rid = value.decode("latin-1")
                break
        if rid is None or not _REQUEST_ID_RE.match(rid):
            rid = new_hex_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        received = 0
        status = 500
        answering = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                answering = scope[ANSWERING] = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if on_error is None:
                await app(scope, counting_receive, tagging_send)
            else:
                try:
                    await app(scope, counting_receive, tagging_send)
                except Exception as exc:
                    await on_error(exc, scope, counting_receive, tagging_send, answering)
        finally:
            endpoint = self.templates.get(scope.get("endpoint"), "other")
            elapsed = time.perf_counter() - started
            self.metrics.http.record(endpoint, scope["method"], status, received, elapsed)
            request_id.reset(token)


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
