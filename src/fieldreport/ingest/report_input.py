"""Parsing and validating an incoming report, from multipart/form-data or JSON.

Field names are seed 000's push contract, so what comes in is what goes out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request

from fieldreport.ingest.body import BodyTooLarge, LimitedBody, read_limited
from fieldreport.ingest.errors import HTTPProblem, too_large
from fieldreport.ingest.files import (
    IncomingFile,
    NotAnImage,
    check_png,
    safe_content_type,
    safe_filename,
    sniff_image,
    sniff_image_head,
    spool,
    with_extension,
)
from fieldreport.ingest.report_form import FormFile, FormItem, read_form

TEXT_LIMITS = {
    "key": 200,
    "subject": 1000,
    "sendercomment": 64 * 1024,
    "senderemail": 320,
    "additionalinfo": 1024 * 1024,
    "browser": 2000,
    "referer": 8192,
    "recording": 64,
}
NOTE_LIMIT = 10_000
MAX_NOTES = 500
MAX_ATTACHMENTS = 20
MAX_FIELDS = MAX_NOTES + 20
MAX_FIELD_BYTES = 1024 * 1024 + 1
FILE_FIELDS = ("file", "attachment")
_RECORDING_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def bad(message: str, code: str = "invalid_field") -> HTTPProblem:
    return HTTPProblem(400, message, code=code)


def not_an_image(refused: NotAnImage) -> HTTPProblem:
    return bad(str(refused), code="not_an_image")


@dataclass
class IncomingReport:
    key: str | None = None
    text: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    screenshot: IncomingFile | None = None
    attachments: list[IncomingFile] = field(default_factory=list)

    def close(self) -> None:
        for f in self.files:
            f.close()

    @property
    def files(self) -> list[IncomingFile]:
        return ([self.screenshot] if self.screenshot else []) + self.attachments


def _check_text(report: IncomingReport) -> None:
    for name, value in report.text.items():
        if len(value) > TEXT_LIMITS[name]:
            raise bad(f"`{name}` is longer than {TEXT_LIMITS[name]} characters")
        if "\x00" in value:
            raise bad(f"`{name}` contains a NUL character")
    if len(report.notes) > MAX_NOTES:
        raise bad(f"at most {MAX_NOTES} notes (`notelist[]`) per report")
    for note in report.notes:
        if len(note) > NOTE_LIMIT or "\x00" in note:
            raise bad(f"each note must be text of at most {NOTE_LIMIT} characters")
    email = report.text.get("senderemail", "").strip()
    if email:
        normalized, problem = _checked_email(email)
        if problem:
            raise bad(f"`senderemail` is not a valid email address: {problem}")
        report.text["senderemail"] = normalized
    recording = report.text.get("recording", "").strip()
    if recording and not _RECORDING_RE.match(recording):
        raise bad("`recording` must be a session id (letters, digits, - and _; at most 64)")


@functools.lru_cache(maxsize=4096)
def _checked_email(email: str) -> tuple[str, str]:
    """``(normalized, "")`` or ``("", why not)``. A pure function of the address, and the
    same senders come back: email_validator spends ~130 µs of Python per address."""
    try:
        return validate_email(email, check_deliverability=False).normalized, ""
    except EmailNotValidError as exc:
        return "", str(exc)


async def _check_files(report: IncomingReport) -> None:
    if len(report.attachments) > MAX_ATTACHMENTS:
        raise bad(f"at most {MAX_ATTACHMENTS} attachments per report")
    shot = report.screenshot
    if shot is not None:
        try:
            if isinstance(shot.file, io.BytesIO):
                # At most 1 MiB in memory: its header read here (~20 µs, less than a trip
                # to a worker thread); a PNG's chunks are checked by the blob store in the
                # thread that hashes and writes them (a refusal there stores nothing).
                content_type, ext = sniff_image_head(shot.file)
                if content_type == "image/png":
                    shot.check = check_png
            else:
                content_type, ext = await asyncio.to_thread(sniff_image, shot.file)
        except NotAnImage as exc:
            raise not_an_image(exc) from exc
        shot.content_type = content_type
        shot.filename = with_extension(shot.filename, ext)


async def parse_multipart(request: Request, limit: int) -> IncomingReport:
    """A report from multipart/form-data (streamed: :mod:`fieldreport.ingest.report_form`)
    or application/x-www-form-urlencoded (no files: Starlette's parser)."""
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        items = await read_form(
            request,
            limit,
            max_files=MAX_ATTACHMENTS + 1,
            max_fields=MAX_FIELDS,
            max_part_size=MAX_FIELD_BYTES,
        )
    else:
        items = await _read_urlencoded(request, limit)
    report = IncomingReport()
    try:
        for name, value in items:
            if isinstance(value, FormFile):
                if name == "file":
                    if report.screenshot is not None:
                        raise bad("only one `file` (the screenshot) per report")
                    report.screenshot = _incoming_file("screenshot", value, "screenshot")
                elif name == "attachment":
                    default = f"attachment-{len(report.attachments) + 1}"
                    report.attachments.append(_incoming_file("attachment", value, default))
                else:
                    raise bad(f"unknown file field `{name}` (expected `file` or `attachment`)")
            elif name == "notelist[]":
                report.notes.append(value)
            elif name in TEXT_LIMITS:
                if name in report.text:
                    raise bad(f"field `{name}` is given more than once")
                report.text[name] = value
            elif name in FILE_FIELDS:
                raise bad(f"`{name}` must be a file upload, not a text field")
            else:
                raise bad(f"unknown field `{name}`")
        report.key = report.text.pop("key", None)
        _check_text(report)
        await _check_files(report)
    except BaseException:
        for _, value in items:
            if isinstance(value, FormFile):
                value.file.close()
        raise
    return report


def _incoming_file(role: str, part: FormFile, default_name: str) -> IncomingFile:
    return IncomingFile(
        role=role,
        filename=safe_filename(part.filename, default_name),
        content_type=safe_content_type(part.content_type),
        file=part.file,
    )


async def _read_urlencoded(request: Request, limit: int) -> list[FormItem]:
    """The fields of an application/x-www-form-urlencoded body (it has no files)."""
    body = LimitedBody(request, limit)
    try:
        form = await body.request.form(max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except BodyTooLarge as exc:
        raise too_large(limit) from exc
    except MultiPartException as exc:
        raise bad(f"malformed multipart body: {exc.message}", code="malformed_body") from exc
    except HTTPException as exc:  # Starlette turns MultiPartException into this inside an app
        raise bad(f"malformed multipart body: {exc.detail}", code="malformed_body") from exc
    except ClientDisconnect as exc:
        raise bad("the client disconnected before the body was complete", "malformed_body") from exc
    return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


def _decode_data(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise bad(f"`{what}` must be a base64 string or data URL")
    if value.startswith("data:"):
        header, sep, payload = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise bad(f"`{what}` must be a base64 data URL (data:image/png;base64,...)")
        value = payload
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad(f"`{what}` is not valid base64") from exc


async def parse_json(request: Request, limit: int) -> IncomingReport:
    raw = await read_limited(request, limit)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"body is not valid JSON: {exc}", code="malformed_body") from exc
    if not isinstance(body, dict):
        raise bad("the JSON body must be an object", code="malformed_body")
    report = IncomingReport()
    try:
        for name, value in body.items():
            if name in ("notelist", "notelist[]"):
                if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                    raise bad("`notelist` must be a list of strings")
                report.notes.extend(value)
            elif name == "additionalinfo" and isinstance(value, dict | list):
                report.text[name] = json.dumps(value, ensure_ascii=False)
            elif name in TEXT_LIMITS:
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise bad(f"`{name}` must be a string")
                report.text[name] = value
            elif name == "file":
                if value is not None:
                    report.screenshot = IncomingFile(
                        "screenshot", "screenshot", "", spool(_decode_data(value, "file"))
                    )
            elif name == "attachments":
                if not isinstance(value, list):
                    raise bad("`attachments` must be a list of {filename, content_type, data}")
                for i, item in enumerate(value):
                    if not isinstance(item, dict) or "data" not in item:
                        raise bad("each attachment needs `data` (base64)")
                    report.attachments.append(
                        IncomingFile(
                            "attachment",
                            safe_filename(item.get("filename"), f"attachment-{i + 1}"),
                            safe_content_type(item.get("content_type")),
                            spool(_decode_data(item["data"], f"attachments[{i}].data")),
                        )
                    )
            else:
                raise bad(f"unknown field `{name}`")
        report.key = report.text.pop("key", None)
        _check_text(report)
        await _check_files(report)
    except BaseException:
        report.close()
        raise
    return report
