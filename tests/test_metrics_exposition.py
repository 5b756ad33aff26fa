"""The HTTP metrics, counted in plain numbers, expose what prometheus_client's own Counter
and Histogram expose for the same requests: names, labels, values and order."""

from __future__ import annotations

import random
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import metrics as prometheus_metrics

from fieldreport.metrics import DURATION_BUCKETS, Metrics

Request = tuple[str, str, int, int, float]


def _requests(seed: int) -> list[Request]:
    rng = random.Random(seed)
    endpoints = ["/v1/{platform}/append", "/api/fullstack/v1/send", "/healthz", "other"]
    edges = [float(b) for b in DURATION_BUCKETS]
    out = []
    for _ in range(500):
        # on the bucket edges, just past them, far past the last one, or anywhere
        seconds = rng.choice([rng.choice(edges), rng.choice(edges) + 1e-9, 30.0, rng.random()])
        out.append(
            (
                rng.choice(endpoints),
                rng.choice(["POST", "GET"]),
                rng.choice([200, 201, 401, 503]),
                rng.choice([0, 0, 300, 20_000]),
                seconds,
            )
        )
    return out


def _reference(requests: list[Request]) -> bytes:
    """The same requests counted as the middleware counted them before (prometheus_client's
    labelled children)."""
    registry = CollectorRegistry()
    counts = Counter(
        "fieldreport_http_requests",
        "HTTP requests by route and status code.",
        ["endpoint", "method", "status"],
        registry=registry,
    )
    received = Counter(
        "fieldreport_ingest_bytes",
        "Request body bytes received, by route.",
        ["endpoint"],
        registry=registry,
    )
    duration = Histogram(
        "fieldreport_http_request_duration_seconds",
        "Time to answer a request, by route.",
        ["endpoint"],
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    seen: set[str] = set()
    for endpoint, method, status, size, seconds in requests:
        if endpoint not in seen:  # the route's children were made at its first request
            seen.add(endpoint)
            received.labels(endpoint)
            duration.labels(endpoint)
        counts.labels(endpoint, method, str(status)).inc()
        if size:
            received.labels(endpoint).inc(size)
        duration.labels(endpoint).observe(seconds)
    return generate_latest(registry)


def _without_created_values(text: bytes) -> bytes:
    return re.sub(rb"^(\S+_created\{.*\}) \S+$", rb"\1 T", text, flags=re.MULTILINE)


@pytest.mark.parametrize("created", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_exposition_as_prometheus_client(seed: int, created: bool) -> None:
    requests = _requests(seed)
    if not created:
        prometheus_metrics.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        metrics = Metrics()
        for request in requests:
            metrics.http.record(*request)
        ours = generate_latest(metrics.registry)
        reference = _reference(requests)
    finally:
        prometheus_metrics.enable_created_metrics()  # type: ignore[no-untyped-call]
    assert (b"_created{" in ours) is created
    assert _without_created_values(ours) == _without_created_values(reference)


def test_nothing_counted_yet() -> None:
    assert generate_latest(Metrics().registry) == _reference([])
