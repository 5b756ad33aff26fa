"""What the plain ASGI ingest routes share (full-stack ``send``, session ``append``/``late``).

Those routes skip Starlette's Request and Response on the hottest paths (see
:func:`fieldreport.routing.asgi_route`): they read the few headers they need in one pass
over the raw list and send their answer as two ASGI messages. Header values are decoded as
Latin-1 and the first of repeated headers wins, as with Starlette's ``request.headers``.
"""

from __future__ import annotations

from starlette.types import Message, Scope

from fieldreport.metrics import Observed

#: An answer: status, body, headers (ASGI's raw pairs, in the order they are sent).
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
JSON_TYPE = (b"content-type", b"application/json")


def first_headers(scope: Scope, names: tuple[bytes, ...]) -> list[str | None]:
    """The values of the request headers ``names`` (lower case), in that order; ``None``
    for one the request does not have."""
    found: list[bytes | None] = [None] * len(names)
    for name, value in scope["headers"]:
        if name in names:
            i = names.index(name)
            if found[i] is None:
                found[i] = value
    return [None if value is None else value.decode("latin-1") for value in found]


def raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Response headers as ASGI's raw pairs (names in lower case, as Starlette sends them)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def response_start(
    observed: Observed | None, status: int, headers: list[tuple[bytes, bytes]]
) -> Message:
    """The ``http.response.start`` message of an answer; ``observed``: the request's, when
    the route reports to it itself (:data:`fieldreport.metrics.OBSERVED`), which notes the
    status and appends the request id to ``headers`` (a list of the caller's own). The
    routes send it and the body message themselves: a coroutine between them and ``send``
    was one more frame per request."""
    if observed is None:
        return {"type": "http.response.start", "status": status, "headers": headers}
    return observed.start(status, headers)
