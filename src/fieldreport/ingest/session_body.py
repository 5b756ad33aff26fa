"""Session batch bodies: streamed, bounded, checked on the way to storage.

A batch is stored exactly as sent (gzip stays gzip), but while its chunks are read (into
memory for a small batch stored in its row, streamed to the blob store for a larger one)
they are also checked: the wire size against the batch limit, a gzip body is
inflated incrementally (at most ``INFLATE_STEP`` bytes at a time, never whole) against the
inflated limit, and a web batch is parsed incrementally to prove it is one JSON array of
objects (rrweb events). A failed check raises :class:`HTTPProblem` from inside the stream,
which aborts the read (and any blob write).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import AsyncIterator, Iterator

import ijson
import msgspec
from starlette.types import Receive

from fieldreport.ingest.body import check_declared_length
from fieldreport.ingest.errors import HTTPProblem, too_large

INFLATE_STEP = 64 * 1024
GZIP_WBITS = 16 + zlib.MAX_WBITS


def bad_gzip(detail: str) -> HTTPProblem:
    return HTTPProblem(400, f"invalid gzip body: {detail}", code="invalid_gzip")


def inflated_too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(
        413,
        f"the batch inflates past the limit of {limit} bytes (refused unread)",
        code="too_large",
    )


class GzipInflater:
    """Incremental gzip decompression with a hard cap on the output size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflated = 0
        self._d = zlib.decompressobj(GZIP_WBITS)
        self._members = 0
        self._fed = False  # the current member has received input

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            self._fed = True
            try:
                out = self._d.decompress(data, INFLATE_STEP)
            except zlib.error as exc:
                raise bad_gzip(str(exc)) from exc
            self.inflated += len(out)
            if self.inflated > self.limit:
                raise inflated_too_large(self.limit)
            if out:
                yield out
            if self._d.eof:  # a gzip member ended; another may follow (RFC 1952)
                self._members += 1
                data = self._d.unused_data
                self._d = zlib.decompressobj(GZIP_WBITS)
                self._fed = False
            else:
                data = self._d.unconsumed_tail

    def finish(self) -> None:
        if self._members == 0 or self._fed:
            raise bad_gzip("the stream ends before the end of the gzip data")


_OBJECT = object()


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# The reference parser: it decides every batch the fast check below is not sure about.
_DECODER = json.JSONDecoder(object_pairs_hook=lambda pairs: _OBJECT, parse_constant=_no_constants)


class _Event(msgspec.Struct, gc=False):  # no fields: never part of a reference cycle
    """Any JSON object: msgspec checks each member while skipping it, building nothing."""


_EVENTS = msgspec.json.Decoder(list[_Event])
_DIGIT_RUN = re.compile(rb"[0-9]*")
_NOT_DIGIT = re.compile(rb"[^0-9]")
_DIGITS = b"0123456789"


def _has_digit_run_over(data: bytes, limit: int) -> bool:
    """Whether ``data`` holds more than ``limit`` consecutive ASCII digits (0: never).

    Such a run covers a multiple of ``limit``, so probing those positions finds it. A run
    through a probe that ends at ``right`` is too long when the ``limit + 1`` bytes before
    ``right`` are all digits; the search for another byte there stops at the first one (no
    copy of the ``limit`` bytes before the probe).
    """
    if limit <= 0:
        return False
    for probe in range(0, len(data), limit):
        if data[probe] in _DIGITS:
            right = _DIGIT_RUN.match(data, probe).end()  # type: ignore[union-attr]
            start = right - limit - 1
            if start >= 0 and _NOT_DIGIT.search(data, start, probe) is None:
                return True
    return False


def fast_events_count(data: bytes) -> int | None:
    """The number of events when a fast structural parse proves ``data`` is a batch.

    ``None`` means "not sure": the caller asks the reference parser, which alone may refuse
    a batch (and words the refusal). Whatever this accepts the reference parser accepts:
    msgspec validates every value while skipping it (no objects are built), the UTF-8 is
    checked by a decode, and integers longer than Python's ``int`` conversion limit (which
    the reference parser refuses) are sent to it. The reference parser accepts a few things
    msgspec refuses (lone UTF-16 surrogate escapes): those take the slow path.
    """
    try:
        if not data.isascii():
            data.decode("utf-8")
        events = _EVENTS.decode(data)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return None
    if _has_digit_run_over(data, sys.get_int_max_str_digits()):
        return None
    return len(events)


def _bad_batch(detail: str) -> HTTPProblem:
    return HTTPProblem(
        400, f"a web batch must be a JSON array of rrweb events: {detail}", code="invalid_batch"
    )


class _StreamingArrayCheck:
    """The incremental parser behind :class:`EventsArrayCheck`, for large batches."""

    def __init__(self) -> None:
        self._events = ijson.sendable_list()
        self._coro = ijson.basic_parse_coro(self._events)
        self._depth = 0
        self._started = False
        self.count = 0

    def feed(self, data: bytes) -> None:
        if not data:  # ijson takes an empty send as the end of the input
            return
        try:
            self._coro.send(data)
        except ijson.JSONError as exc:
            raise _bad_batch(str(exc)[:200]) from exc
        self._check()

    def _check(self) -> None:
        for event, _value in self._events:
            if not self._started:
                if event != "start_array":
                    raise _bad_batch("the body is not an array")
                self._started = True
                self._depth = 1
                continue
            if self._depth == 0:
                raise _bad_batch("content after the array")
            if self._depth == 1 and event not in ("start_map", "end_array"):
                raise _bad_batch("an item is not an object")
            if event in ("start_map", "start_array"):
                if self._depth == 1:
                    self.count += 1
                self._depth += 1
            elif event in ("end_map", "end_array"):
                self._depth -= 1
        del self._events[:]

    def finish(self) -> None:
        try:
            self._coro.close()
        except ijson.JSONError as exc:
            raise _bad_batch(str(exc)[:200]) from exc
        self._check()
        if not self._started or self._depth != 0:
            raise _bad_batch("the array is incomplete")


class EventsArrayCheck:
    """Proves that a body is one JSON array whose items are objects.

    Typical batches (up to ``memory_limit`` bytes of JSON) are checked in one go: by
    :func:`fast_events_count` (msgspec, ~15x faster than the standard library's parser),
    and by the standard library's C parser when that is not sure, with objects discarded as
    soon as they are parsed (a sentinel stands in for each). A larger batch switches to an
    incremental parser (ijson/yajl) that holds no more than a chunk.
    """

    def __init__(self, memory_limit: int = 2 * 1024 * 1024) -> None:
        self.memory_limit = memory_limit
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._stream: _StreamingArrayCheck | None = None
        self.count = 0

    def feed(self, data: bytes) -> None:
        if self._stream is None:
            self._buffer.append(data)
            self._buffered += len(data)
            if self._buffered <= self.memory_limit:
                return
            self._stream = _StreamingArrayCheck()
            data = b"".join(self._buffer)
            self._buffer = []
        self._stream.feed(data)
        self.count = self._stream.count

    def finish(self) -> None:
        if self._stream is not None:
            self._stream.finish()
            self.count = self._stream.count
            return
        data = b"".join(self._buffer)
        self._buffer = []
        count = fast_events_count(data)
        if count is not None:
            self.count = count
            return
        try:
            value = _DECODER.decode(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad_batch(str(exc)[:200]) from exc
        except RecursionError as exc:  # thousands of nested brackets: no rrweb event is that deep
            raise _bad_batch("nested too deeply") from exc
        if not isinstance(value, list):
            raise _bad_batch("the body is not an array")
        if not all(item is _OBJECT for item in value):
            raise _bad_batch("an item is not an object")
        self.count = len(value)


class BatchBody:
    """Reads a request body once (from ASGI ``receive``), checking it on the way:
    :meth:`read_inline` takes a small body whole; :meth:`chunks` feeds a larger one to the
    blob store. ``content_length`` is the request's header (``None``: not sent)."""

    def __init__(
        self,
        receive: Receive,
        content_length: str | None,
        *,
        limit: int,
        inflated_limit: int,
        gzip: bool,
        json_events: bool,
    ) -> None:
        check_declared_length(content_length, limit)
        self._receive = receive
        self._ended = False
        self.limit = limit
        self.size = 0
        self.inflater = GzipInflater(inflated_limit) if gzip else None
        self.events = EventsArrayCheck() if json_events else None
        self._head: list[bytes] = []  # read by read_inline, not yet given to chunks()

    def _check(self, data: bytes) -> None:
        if self.inflater is not None:
            for plain in self.inflater.feed(data):
                if self.events is not None:
                    self.events.feed(plain)
        elif self.events is not None:
            self.events.feed(data)

    async def _next(self) -> bytes | None:
        """The body's next (non-empty, checked) chunk; ``None`` once it has ended. The ASGI
        messages are read as Starlette's ``Request.stream`` reads them, without an async
        generator per request."""
        while not self._ended:
            message = await self._receive()
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    self._ended = True
                chunk: bytes = message.get("body", b"")
                if chunk:
                    self.size += len(chunk)
                    if self.size > self.limit:
                        raise too_large(self.limit)
                    self._check(chunk)
                    return chunk
            elif message["type"] == "http.disconnect":
                raise HTTPProblem(
                    400,
                    "the client disconnected before the body was complete",
                    code="malformed_body",
                )
        return None

    async def read_inline(self, limit: int) -> bytes | None:
        """The whole body if it is at most ``limit`` bytes; None once it is larger (what was
        read is kept for :meth:`chunks`). Call :meth:`finish` after either."""
        while (chunk := await self._next()) is not None:
            if self._ended and not self._head and self.size <= limit:
                return chunk  # the whole body came in one message, as it mostly does
            self._head.append(chunk)
            if self.size > limit:
                return None
        head, self._head = self._head, []
        return head[0] if len(head) == 1 else b"".join(head)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's (remaining) chunks, checked."""
        while self._head:
            yield self._head.pop(0)
        while (chunk := await self._next()) is not None:
            yield chunk

    def finish(self) -> None:
        """Checks that need the whole body (gzip trailer, closing bracket)."""
        if self.size == 0:
            raise HTTPProblem(400, "empty batch", code="empty_batch")
        if self.inflater is not None:
            self.inflater.finish()
        if self.events is not None:
            self.events.finish()
