"""A multipart/form-data push parser: a body's parts, reported to a sink as the body streams in.

Why not the ``multipart`` package's ``PushMultipartParser``, which we used before: its
Python work per part (a generator event per part start, piece and end, each header line
decoded and checked, a ``MultipartSegment`` built) was ~110 µs of the ~130-160 µs that a
report's 12 parts cost to parse (a 200 KB screenshot and 11 text fields, in-process), on
the event loop's thread. This parser keeps its grammar and its messages (non-strict mode):
the same delimiters, preamble and epilogue rules, header limits (8 lines of at most 4224
bytes), header continuations, part ``Content-Length``, the part count limit, and the same
error text for each refusal; the header *values* are still read by the package's own
``parse_content_disposition``. What it does differently:

- a part's header block is found with one ``bytes.find`` and parsed once per distinct
  block (a bounded cache: the same widget sends the same headers every time), not line
  by line per request;
- the sink is called directly (``start``, ``data``, ``end``), no generator;
- a part's data is handed on as ``memoryview`` slices of the received chunk, not copied
  (a 200 KB screenshot was copied twice on its way to its spool, now once).

A header block that is still incomplete when a chunk ends is checked line by line as the
package would, so a refusal does not wait for the end of the body.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, Protocol

from multipart import parse_content_disposition

MAX_HEADER_SIZE = 4096 + 128  # one header line (name and value), as the package's default
MAX_HEADER_COUNT = 8

_HEADER_CHARSET = "latin-1"  # every byte is a character; the caller decodes names further
_KNOWN_HEADERS = frozenset(
    ("Content-Disposition", "Content-Type", "Content-Length", "Content-Range")
)
_HEADER_NAME = re.compile(r"[a-zA-Z0-9-_]+", re.ASCII)
_PREAMBLE, _HEADER, _BODY, _COMPLETE = range(4)


class FormError(ValueError):
    """The body is not a valid multipart stream, or breaks a limit (the message says which)."""


class Truncated(FormError):
    """The body ended before its closing boundary."""


class PartHead(NamedTuple):
    """What a part's headers say (text read as Latin-1)."""

    name: str  # "" when the Content-Disposition names none
    filename: str | None
    content_type: str | None  # the first Content-Type header's value, as sent
    length: int  # the part's Content-Length, or -1


class Sink(Protocol):
    def start(self, head: PartHead) -> None: ...

    def data(self, chunk: memoryview) -> None: ...

    def end(self) -> None: ...


def _header_lines(lines: list[bytes]) -> tuple[list[tuple[str, str]], int]:
    """Complete header lines as ``(Title-Case name, value)`` and the part's Content-Length
    (-1 when none); raises as the package does, line by line."""
    headers: list[tuple[str, str]] = []
    length = -1
    for raw in lines:
        line = raw
        if line[0] in b" \t":  # a continuation of the previous line
            if not headers:
                raise FormError("Unexpected segment header continuation")
            if line.isspace():
                raise FormError("Empty segment header continuation")
            line = ": ".join(headers.pop()).encode(_HEADER_CHARSET) + b" " + line[1:]
        if len(line) > MAX_HEADER_SIZE:
            raise FormError("Maximum segment header length exceeded")
        if len(headers) >= MAX_HEADER_COUNT:
            raise FormError("Maximum segment header count exceeded")
        name, colon, value = line.decode(_HEADER_CHARSET).partition(":")
        if not colon:
            raise FormError("Malformed segment header")
        if name not in _KNOWN_HEADERS:
            name = name.strip().title()
            if name not in _KNOWN_HEADERS and not _HEADER_NAME.fullmatch(name):
                raise FormError("Invalid segment header name")
        value = value.lstrip(" \t")
        if name == "Content-Length":
            if length >= 0:
                raise FormError("Multiple segment Content-Length headers")
            if not (value.isascii() and value.isdigit()) or str(int(value)) != value:
                raise FormError("Invalid segment Content-Length header value")
            length = int(value)
        headers.append((name, value))
    return headers, length


def _head(block: bytes) -> PartHead:
    """A complete header block (its lines, without the blank one) parsed."""
    disposition = name = filename = content_type = None
    headers, length = _header_lines(block.split(b"\r\n")) if block else ([], -1)
    for header, value in headers:
        if header == "Content-Disposition":
            disposition, name, filename = parse_content_disposition(value)
        elif header == "Content-Type" and content_type is None:
            content_type = value
    if disposition != "form-data":
        if disposition is None:
            raise FormError("Missing Content-Disposition segment header")
        raise FormError("Invalid Content-Disposition segment header: Wrong type")
    return PartHead(name or "", filename, content_type, length)


#: Header blocks up to this size are parsed once and remembered (:func:`_cached_head`).
CACHED_HEAD = 1024


@functools.lru_cache(maxsize=512)
def _cached_head(block: bytes) -> PartHead | str:
    """:func:`_head`, or why not: a pure function of at most :data:`CACHED_HEAD` bytes
    (the cache holds at most ~0.5 MiB; the same clients send the same headers)."""
    try:
        return _head(block)
    except FormError as exc:
        return str(exc)


def _check_partial_head(rest: bytes) -> None:
    """A header block not complete yet: refuse now what the complete lines already break,
    or a line that is already too long or broken."""
    lines = rest.split(b"\r\n")
    last = lines.pop()
    if lines:
        _header_lines(lines)
    if b"\n" in last:
        raise FormError("Invalid line break in segment header")
    if len(last) > MAX_HEADER_SIZE:
        raise FormError("Maximum segment header length exceeded")


class FormParser:
    """Feed a multipart/form-data body to :meth:`feed` in chunks, then :meth:`close`.

    ``sink.start(head)`` opens each part, ``sink.data(view)`` gives its bytes (non-empty
    ``memoryview`` slices of the fed chunks, valid as long as the sink keeps them) and
    ``sink.end()`` closes it. At most ``max_parts`` parts. Raises :class:`FormError`.
    """

    __slots__ = (
        "_buffer",
        "_delimiter",
        "_end",
        "_left",
        "_max_parts",
        "_on_data",
        "_on_start",
        "_parts",
        "_received",
        "_state",
    )

    def __init__(self, boundary: str, sink: Sink, max_parts: int) -> None:
        raw = boundary.encode("utf-8")
        if not raw:
            raise FormError("Empty boundary")
        if b"\n" in raw:
            raise FormError("Invalid characters in boundary")
        self._delimiter = b"\r\n--" + raw
        self._on_start = sink.start
        self._on_data = sink.data
        self._end = sink.end
        self._max_parts = max_parts
        self._parts = 0
        self._buffer = b""
        self._state = _PREAMBLE
        self._left = -1  # bytes the open part's Content-Length still allows, or -1
        self._received = 0  # bytes of the open part so far

    @property
    def complete(self) -> bool:
        return self._state == _COMPLETE

    def close(self) -> None:
        """Raises :class:`Truncated` unless the closing boundary was seen."""
        self._buffer = b""
        if self._state != _COMPLETE:
            raise Truncated("Unexpected end of multipart stream (parser closed)")

    def _next_part(self) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise FormError("Maximum segment count exceeded")
        self._state = _HEADER

    def _data(self, view: memoryview) -> None:
        self._received += len(view)
        if -1 < self._left < self._received:
            raise FormError("Segment Content-Length exceeded")
        self._on_data(view)

    def _close_part(self) -> None:
        if self._received < self._left:
            raise FormError("Segment size does not match Content-Length header")
        self._end()

    def feed(self, chunk: bytes) -> None:
        """Parse ``chunk`` (not empty), calling the sink for what it completes."""
        state = self._state
        if state == _COMPLETE:
            return  # an epilogue: ignored
        buffer = self._buffer + chunk if self._buffer else chunk
        view = memoryview(buffer)
        size = len(buffer)
        delimiter = self._delimiter
        d_len = len(delimiter)
        offset = 0
        try:
            while offset < size:
                if state == _BODY:
                    index = buffer.find(delimiter, offset)
                    if index < 0:
                        # Hand on what cannot be part of a delimiter split by the chunk's end.
                        cut = buffer.rfind(b"\r", max(offset, size - (d_len - 1)))
                        if cut < 0 or not delimiter.startswith(buffer[cut:]):
                            self._data(view[offset:])
                            offset = size
                        elif cut > offset:
                            self._data(view[offset:cut])
                            offset = cut
                        break
                    if index > offset:
                        self._data(view[offset:index])
                        offset = index
                    after = index + d_len
                    tail = buffer[after : after + 2]
                    if tail == b"\r\n":
                        self._close_part()
                        offset = after + 2
                        self._next_part()
                        state = _HEADER
                    elif tail == b"--":
                        self._close_part()
                        offset = after + 2
                        state = _COMPLETE
                        break
                    elif after + 2 > size:
                        break  # the delimiter's last two bytes are still to come
                    else:
                        raise FormError("Unexpected bytes after boundary")
                elif state == _HEADER:
                    if buffer.startswith(b"\r\n", offset):
                        block, after = b"", offset + 2
                    else:
                        found = buffer.find(b"\r\n\r\n", offset)
                        if found < 0:
                            _check_partial_head(buffer[offset:])
                            break
                        block, after = buffer[offset:found], found + 4
                    if len(block) > CACHED_HEAD:
                        head = _head(block)
                    else:
                        cached = _cached_head(block)
                        if isinstance(cached, str):
                            raise FormError(cached)
                        head = cached
                    offset = after
                    self._left = head.length
                    self._received = 0
                    state = _BODY
                    self._on_start(head)
                else:  # _PREAMBLE
                    if size < d_len:
                        break
                    index = buffer.find(delimiter[2:], offset)
                    if index < 0:
                        # Skip the preamble, keeping what may start a delimiter.
                        cut = buffer.rfind(b"\r", size - (d_len - 1))
                        offset = size if cut < 0 else cut
                        break
                    if index > 0 and buffer[index - 2 : index] != b"\r\n":
                        raise FormError("Unexpected byte in front of first boundary")
                    after = index + d_len
                    tail = buffer[after - 2 : after]
                    if tail == b"\r\n":
                        offset = after
                        self._next_part()
                        state = _HEADER
                    elif tail == b"--":
                        offset = after
                        state = _COMPLETE
                        break
                    elif tail[:1] == b"\n":
                        raise FormError("Invalid line break after first boundary")
                    elif after <= size:
                        raise FormError("Unexpected byte after first boundary")
                    else:
                        offset = max(0, index - 2)
                        break
        finally:
            self._state = state
        self._buffer = buffer[offset:] if offset < size else b""
