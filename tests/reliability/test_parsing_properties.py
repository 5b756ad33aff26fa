"""Property tests (hypothesis) for the parsers that face the field directly:
report multipart and JSON bodies, session batches (JSON arrays, gzip).

The properties: anything well-formed round-trips exactly, however the body is cut into
chunks on the wire; anything else is refused with a 4xx ``HTTPProblem``, never another
exception (which would be a 500); the two batch parsers (in memory and streaming) agree.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from fieldreport.ingest.errors import HTTPProblem
from fieldreport.ingest.report_input import IncomingReport, parse_json, parse_multipart
from fieldreport.ingest.session_body import EventsArrayCheck, GzipInflater

LIMIT = 256 * 1024
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=300,
)
CUTS = st.lists(st.integers(min_value=1, max_value=64), max_size=12)


def _request(body: bytes, content_type: str, cuts: list[int]) -> Request:
    """A request whose body arrives in pieces of the given sizes (then the rest)."""
    pieces: list[bytes] = []
    rest = body
    for size in cuts:
        if not rest:
            break
        pieces.append(rest[:size])
        rest = rest[size:]
    pieces.append(rest)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/reports",
        "query_string": b"",
        "app": None,  # as inside the app: Starlette then raises HTTPException on bad forms
        "headers": [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return Request(scope, receive)


def _parse(kind: str, body: bytes, content_type: str, cuts: list[int]) -> IncomingReport:
    parser = parse_multipart if kind == "multipart" else parse_json
    return asyncio.run(parser(_request(body, content_type, cuts), LIMIT))


def _refused_cleanly(kind: str, body: bytes, content_type: str, cuts: list[int]) -> None:
    try:
        _parse(kind, body, content_type, cuts).close()
    except HTTPProblem as problem:
        assert 400 <= problem.status < 500, problem.status
        assert problem.message


FIELDS = st.fixed_dictionaries(
    {},
    optional={"subject": TEXT, "sendercomment": TEXT, "additionalinfo": TEXT, "browser": TEXT},
)
FILES = st.lists(st.tuples(TEXT, st.binary(max_size=2000)), max_size=4)


@SETTINGS
@given(fields=FIELDS, notes=st.lists(TEXT, max_size=5), files=FILES, cuts=CUTS)
def test_multipart_round_trips_whatever_the_chunking(
    fields: dict[str, str], notes: list[str], files: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    built = httpx.Request(
        "POST",
        "http://127.0.0.1/api/v1/reports",
        data={**fields, "notelist[]": notes},
        files=[
            ("attachment", (name or "f", data, "application/octet-stream")) for name, data in files
        ]
        or None,
    )
    body = built.read()
    content_type = built.headers["content-type"]
    if not files:  # httpx sends urlencoded without files; make it multipart anyway
        built = httpx.Request(
            "POST", "http://127.0.0.1/", data={**fields, "notelist[]": notes},
            files=[("attachment", ("x", b"x", "text/plain"))],
        )  # fmt: skip
        body, content_type = built.read(), built.headers["content-type"]
        files = [("x", b"x")]
    report = _parse("multipart", body, content_type, cuts)
    try:
        assert report.text == fields
        assert report.notes == notes
        assert [a.file.read() for a in report.attachments] == [d for _, d in files]
        for attachment in report.attachments:  # display names are never paths
            assert "/" not in attachment.filename and "\\" not in attachment.filename
            assert not attachment.filename.startswith(".") and attachment.filename.isascii()
    finally:
        report.close()


@SETTINGS
@given(body=st.binary(max_size=3000), boundary=st.sampled_from(["b", "xyz", "----a1"]), cuts=CUTS)
def test_garbage_multipart_is_a_4xx(body: bytes, boundary: str, cuts: list[int]) -> None:
    _refused_cleanly("multipart", body, f"multipart/form-data; boundary={boundary}", cuts)


@SETTINGS
@given(
    prefix=st.binary(max_size=200),
    name=st.text(max_size=40),
    filename=st.text(max_size=40),
    value=st.binary(max_size=200),
    cuts=CUTS,
)
def test_mangled_multipart_parts_are_a_4xx(
    prefix: bytes, name: str, filename: str, value: bytes, cuts: list[int]
) -> None:
    """Well-delimited parts with hostile names, filenames and headers."""
    disposition = f'form-data; name="{name}"; filename="{filename}"'.encode("utf-8", "replace")
    body = (
        prefix
        + b"--B\r\nContent-Disposition: "
        + disposition
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + value
        + b"\r\n--B--\r\n"
    )
    _refused_cleanly("multipart", body, "multipart/form-data; boundary=B", cuts)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
KNOWN = st.sampled_from(
    ["subject", "sendercomment", "senderemail", "notelist", "file", "attachments",
     "additionalinfo", "recording", "key", "referer"]
)  # fmt: skip


@SETTINGS
@given(
    body=st.dictionaries(KNOWN | TEXT, JSON_VALUES, max_size=6) | JSON_VALUES,
    cuts=CUTS,
)
def test_any_json_is_parsed_or_a_4xx(body: Any, cuts: list[int]) -> None:
    _refused_cleanly("json", json.dumps(body).encode(), "application/json", cuts)


@SETTINGS
@given(body=st.binary(max_size=2000), cuts=CUTS)
def test_json_garbage_is_a_4xx(body: bytes, cuts: list[int]) -> None:
    _refused_cleanly("json", body, "application/json", cuts)


@SETTINGS
@given(fields=FIELDS, notes=st.lists(TEXT, max_size=5), cuts=CUTS)
def test_json_round_trips(fields: dict[str, str], notes: list[str], cuts: list[int]) -> None:
    body = json.dumps({**fields, "notelist": notes}).encode()
    report = _parse("json", body, "application/json", cuts)
    assert report.text == fields and report.notes == notes


def _batch_verdict(data: bytes, cuts: list[int], memory_limit: int) -> tuple[str, int]:
    check = EventsArrayCheck(memory_limit=memory_limit)
    try:
        rest = data
        for size in cuts:
            check.feed(rest[:size])
            rest = rest[size:]
        check.feed(rest)
        check.finish()
    except HTTPProblem as problem:
        assert problem.status == 400 and problem.code == "invalid_batch"
        return "refused", 0
    return "ok", check.count


def _reference(data: bytes) -> tuple[str, int]:
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=lambda c: 1 / 0)
    except (ValueError, ZeroDivisionError):
        return "refused", 0
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return "ok", len(value)
    return "refused", 0


BATCHES = (
    st.lists(st.dictionaries(TEXT, JSON_VALUES, max_size=3), max_size=6).map(
        lambda v: json.dumps(v).encode()
    )
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
)


@SETTINGS
@given(data=BATCHES, cuts=CUTS)
def test_batch_parsers_agree_with_the_json_reference(data: bytes, cuts: list[int]) -> None:
    expected = _reference(data)
    assert _batch_verdict(data, cuts, memory_limit=1 << 20) == expected  # C parser path
    assert _batch_verdict(data, cuts, memory_limit=0) == expected  # streaming (ijson) path


@SETTINGS
@given(data=st.binary(max_size=5000), members=st.integers(1, 3), cuts=CUTS)
def test_gzip_inflates_exactly_whatever_the_chunking(
    data: bytes, members: int, cuts: list[int]
) -> None:
    wire = b"".join(gzip.compress(data) for _ in range(members))
    inflater = GzipInflater(limit=len(data) * members)
    out: list[bytes] = []
    rest = wire
    for size in [*cuts, len(wire)]:
        out.extend(inflater.feed(rest[:size]))
        rest = rest[size:]
    inflater.finish()
    assert b"".join(out) == data * members


@SETTINGS
@given(data=st.binary(min_size=1, max_size=3000), cut=st.integers(min_value=0))
def test_truncated_or_corrupt_gzip_is_a_4xx(data: bytes, cut: int) -> None:
    wire = gzip.compress(data)
    wire = wire[: cut % len(wire)] + (b"\x00garbage" if cut % 2 else b"")
    inflater = GzipInflater(limit=1 << 20)
    try:
        for _ in inflater.feed(wire):
            pass
        inflater.finish()
    except HTTPProblem as problem:
        assert problem.status == 400 and problem.code == "invalid_gzip"
    else:
        raise AssertionError("a truncated gzip stream was accepted")
