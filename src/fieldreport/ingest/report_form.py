"""A report's multipart/form-data body, parsed as it streams in.

Our push parser (:mod:`fieldreport.ingest.form_parser`, the ``multipart`` package's grammar
and messages at a fraction of its cost) finds the parts; this module adds what a report
needs around it: the size limit while the body streams (413 before it is all read), limits
on files, fields and field size, files spooled (memory up to 1 MiB each, then a temporary
file on disk), the body's closing boundary required, and every refusal a clear 400
``malformed_body``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import IO

import multipart
from starlette.requests import Request

from fieldreport.ingest.body import check_content_length
from fieldreport.ingest.errors import HTTPProblem, too_large
from fieldreport.ingest.files import Spool
from fieldreport.ingest.form_parser import FormError, FormParser, PartHead, Truncated


@dataclass
class FormFile:
    """A file part as the client sent it (name and type not yet sanitised)."""

    filename: str
    content_type: str | None
    file: IO[bytes]


@dataclass
class _FilePart:
    filename: str
    content_type: str | None
    spool: Spool


FormItem = tuple[str, str | FormFile]


def malformed(detail: str) -> HTTPProblem:
    return HTTPProblem(400, f"malformed multipart body: {detail}", code="malformed_body")


def _params(content_type: str) -> dict[str, str]:
    _, options = multipart.parse_options_header(content_type)
    return {str(k): str(v) for k, v in options.items()}


def _charset(options: dict[str, str]) -> str:
    try:
        return codecs.lookup(options.get("charset", "utf-8")).name
    except LookupError:
        return "latin-1"


def _decode(raw: bytes | memoryview, charset: str) -> str:
    try:
        return str(raw, charset)
    except UnicodeDecodeError:
        return str(raw, "latin-1")


def _header_text(value: str, charset: str) -> str:
    """A part header's text: the parser reads headers as Latin-1 (every byte is a
    character); decoded like the values, in UTF-8 (or the body's charset) when they are
    that, else kept as Latin-1."""
    return value if value.isascii() else _decode(value.encode("latin-1"), charset)


class _Form:
    """What one body's parts become, one parser event at a time."""

    def __init__(self, charset: str, max_files: int, max_fields: int, max_part_size: int) -> None:
        self.items: list[tuple[str, str | _FilePart]] = []
        self.charset = charset
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self.files = 0
        self.fields = 0
        self.spools: list[Spool] = []
        self._name = ""
        self._file: _FilePart | None = None
        self._spool: Spool | None = None
        self._value: list[memoryview] = []
        self._value_size = 0

    def start(self, head: PartHead) -> None:
        if not head.name:
            raise malformed('The Content-Disposition header field "name" must be provided.')
        self._name = _header_text(head.name, self.charset)
        if head.filename is not None:
            self.files += 1
            if self.files > self.max_files:
                raise malformed(f"Too many files. Maximum number of files is {self.max_files}.")
            self._spool = Spool()
            self.spools.append(self._spool)
            content_type = head.content_type
            self._file = _FilePart(
                _header_text(head.filename, self.charset),
                None if content_type is None else _header_text(content_type, self.charset),
                self._spool,
            )
        else:
            self.fields += 1
            if self.fields > self.max_fields:
                raise malformed(f"Too many fields. Maximum number of fields is {self.max_fields}.")
            self._spool = None
            self._value = []
            self._value_size = 0

    def data(self, chunk: memoryview) -> None:
        if self._spool is not None:
            self._spool.write(chunk)
            return
        self._value_size += len(chunk)
        if self._value_size > self.max_part_size:
            raise malformed(f"Part exceeded maximum size of {self.max_part_size // 1024}KB.")
        self._value.append(chunk)

    def end(self) -> None:
        if self._spool is not None:
            assert self._file is not None
            self.items.append((self._name, self._file))
            self._spool = self._file = None
        else:
            value = self._value[0] if len(self._value) == 1 else b"".join(self._value)
            self.items.append((self._name, _decode(value, self.charset)))

    async def finish(self) -> list[FormItem]:
        items: list[FormItem] = []
        for name, value in self.items:
            if isinstance(value, _FilePart):
                file = await value.spool.finish()
                items.append((name, FormFile(value.filename, value.content_type, file)))
            else:
                items.append((name, value))
        return items

    def close(self) -> None:
        for spool in self.spools:
            spool.close()


async def read_form(
    request: Request, limit: int, *, max_files: int, max_fields: int, max_part_size: int
) -> list[FormItem]:
    """The parts of a multipart/form-data body in order: ``(name, text)`` for fields and
    ``(name, FormFile)`` for files (the caller closes ``FormFile.file``).

    Raises :class:`HTTPProblem`: 413 past ``limit`` bytes, 400 ``malformed_body`` for a body
    that is not multipart, breaks a limit, ends before its closing boundary or whose client
    goes away.
    """
    check_content_length(request, limit)
    options = _params(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if not boundary:
        raise malformed("Missing boundary in multipart.")
    form = _Form(_charset(options), max_files, max_fields, max_part_size)
    try:
        parser = FormParser(boundary, form, max_parts=max_files + max_fields)
    except FormError as exc:
        raise malformed(str(exc)) from exc
    receive = request.receive
    seen = 0
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise HTTPProblem(
                    400,
                    "the client disconnected before the body was complete",
                    code="malformed_body",
                )
            body: bytes = message.get("body", b"")
            if body:
                seen += len(body)
                if seen > limit:
                    raise too_large(limit)
                parser.feed(body)
                for spool in form.spools:
                    if spool.must_drain:
                        await spool.drain()
            if not message.get("more_body", False):
                break
        try:
            parser.close()
        except Truncated as exc:  # a truncated upload (or no boundary at all)
            raise malformed("it ends before the closing boundary") from exc
        return await form.finish()
    except FormError as exc:
        form.close()
        raise malformed(str(exc)) from exc
    except BaseException:
        form.close()
        raise
