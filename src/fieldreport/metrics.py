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
from contextvars import Token
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
        # the same keys -> (their entry of ``requests``, their route's series): one lookup
        # a request where two were ~0.5k of ~4k instructions
        self._lines: dict[tuple[str, str, int], tuple[list[float], _RouteSeries]] = {}

    def route(self, endpoint: str) -> _RouteSeries:
        series = self.routes.get(endpoint)
        if series is None:
            series = self.routes[endpoint] = _RouteSeries(endpoint)
        return series

    def _line(self, endpoint: str, method: str, status: int) -> tuple[list[float], _RouteSeries]:
        key = (endpoint, method, status)
        counted = self.requests.get(key)
        if counted is None:
            counted = self.requests[key] = [0, time.time()]
        line = self._lines[key] = (counted, self.route(endpoint))
        return line

    def record(
        self, endpoint: str, method: str, status: int, received: int, seconds: float
    ) -> None:
        """One answered request."""
        line = self._lines.get((endpoint, method, status)) or self._line(endpoint, method, status)
        counted, series = line
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
#: The scope key of the request's :class:`Observed`, set only for an app that reports to it
#: itself (an express route made with ``observes_itself``; see :class:`Observed`).
OBSERVED = "fieldreport.observed"


class Observed:
    """What the observability middleware keeps of one request: its id (and the token that
    set it as the current one), when it began, the body bytes received and the status.

    An app's ``receive`` and ``send`` go through :meth:`receive` and :meth:`send`, which
    count and tag as messages pass. An app on the express lane whose route is made with
    ``observes_itself`` instead gets the server's own ``receive`` and ``send`` and this
    object in its scope (:data:`OBSERVED`), and reports itself: the body bytes of each
    ``http.request`` message it receives added to :attr:`received`, its response start
    made by :meth:`start`. Each wrapper is a coroutine per message: three per ingest
    request, ~4k of the ~54k instructions the express lane and this middleware cost a
    trivial request (callgrind)."""

    __slots__ = (
        "_receive",
        "_send",
        "received",
        "request_id",
        "scope",
        "started",
        "status",
        "token",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        rid: str,
        token: Token[str],
        started: float,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.request_id = rid
        self.token = token
        self.started = started
        self.received = 0
        self.status = 500  # what is counted if the app raises before answering

    async def receive(self) -> Message:
        """The server's ``receive``, counting body bytes."""
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        """The server's ``send``, the response start noted and given the request id."""
        if message["type"] == "http.response.start":
            tag = self._answering(message["status"])
            message["headers"] = [*message.get("headers", []), tag]
        await self._send(message)

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> Message:
        """The ``http.response.start`` message of an app that observes itself (``headers``,
        the app's own new list, gets the request id appended), noted as :meth:`send`
        notes it; the app sends it with the server's ``send``."""
        headers.append(self._answering(status))
        return {"type": "http.response.start", "status": status, "headers": headers}

    def _answering(self, status: int) -> tuple[bytes, bytes]:
        """The response starts with ``status``: noted (the scope's :data:`ANSWERING` flag,
        the status counted); the request id header it carries."""
        self.scope[ANSWERING] = True
        self.status = status
        return (b"x-request-id", self.request_id.encode())


class ObservabilityMiddleware:
    """Request ids (the current one for log records, echoed in ``X-Request-ID``) and the
    HTTP metrics (count by status, body bytes, time). The express lane does what
    :meth:`__call__` does with :meth:`begin` and :meth:`end` (no coroutine of its own)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: dict[Any, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app with the request's id, counted and timed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        observed = self.begin(scope, receive, send)
        try:
            await self.app(scope, observed.receive, observed.send)
        finally:
            self.end(observed)

    def begin(self, scope: Scope, receive: Receive, send: Send) -> Observed:
        """An HTTP request begins: its id (the client's ``X-Request-ID``, the first one,
        when it is sane, else a new one) is the current one until :meth:`end`."""
        for key, value in scope.get("headers", ()):  # here rather than a call: ~0.8k less
            if key == b"x-request-id":
                rid: str = value.decode("latin-1")
                if not _REQUEST_ID_RE.match(rid):
                    rid = new_hex_id()
                break
        else:
            rid = new_hex_id()
        token = request_id.set(rid)
        return Observed(scope, receive, send, rid, token, time.perf_counter())

    def end(self, observed: Observed) -> None:
        """The request has been answered (or failed): counted, and its id no longer current."""
        scope = observed.scope
        endpoint = self.templates.get(scope.get("endpoint"), "other")
        elapsed = time.perf_counter() - observed.started
        self.metrics.http.record(
            endpoint, scope["method"], observed.status, observed.received, elapsed
        )
        request_id.reset(observed.token)


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
