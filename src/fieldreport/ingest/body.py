"""Bounded request bodies: a size limit enforced while streaming, not after buffering."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message, Receive

from fieldreport.ingest.errors import HTTPProblem, too_large


class BodyTooLarge(Exception):
    pass


def check_content_length(request: Request, limit: int) -> None:
    check_declared_length(request.headers.get("content-length"), limit)


def check_declared_length(declared: str | None, limit: int) -> None:
    """Refuse a body whose ``Content-Length`` (the header's value, if sent) passes ``limit``."""
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError as exc:
        raise HTTPProblem(400, "Content-Length is not a number", code="bad_request") from exc
    if length > limit:
        raise too_large(limit)


class LimitedBody:
    """Wraps a request so its body stream raises :class:`BodyTooLarge` past ``limit``."""

    def __init__(self, request: Request, limit: int) -> None:
        check_content_length(request, limit)
        self.limit = limit
        self.seen = 0
        self._receive: Receive = request.receive
        self.request = Request(request.scope, self._counting_receive)

    async def _counting_receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            self.seen += len(body)
            if self.seen > self.limit:
                raise BodyTooLarge
        return message


async def read_limited(request: Request, limit: int) -> bytes:
    """Read a whole (small) body, refusing it with 413 once it passes ``limit``."""
    check_content_length(request, limit)
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
