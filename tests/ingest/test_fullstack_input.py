"""The full-stack API's two validation paths agree (seed 001).

``read_event`` / ``read_events`` try msgspec first and fall back to the standard library's
``json`` + ``check_event`` (which names every problem). The fast path may only *accept*, and
only what the slow path accepts, with the same event; everything else must reach the slow
path. Here both are run on the same bodies: hand-picked ones where msgspec and ``json`` read
JSON differently, and generated ones (hypothesis).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldreport.ingest import fullstack_input
from fieldreport.ingest.fullstack_input import (
    MAX_BATCH_ITEMS,
    BadBody,
    Checked,
    check_event,
    encode,
    ok_answer,
    ok_body,
    parse_json,
    read_event,
    read_events,
)
from fieldreport.storage.backend_events import BackendEvent
from tests.ingest.test_fullstack import _event

MAX_PAYLOAD = 64
SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
GOOD = _event("asdf-ghjk-klzx-1234")  # seed 001's example event


def _slow(body: bytes) -> Checked | str:
    try:
        return check_event(parse_json(body), 7, max_payload=MAX_PAYLOAD)
    except BadBody as exc:
        return f"BadBody: {exc}"


def _fast(body: bytes) -> Checked | str:
    try:
        return read_event(body, 7, max_payload=MAX_PAYLOAD)
    except BadBody as exc:
        return f"BadBody: {exc}"


def _slow_batch(body: bytes) -> list[Checked] | str:
    try:
        parsed = parse_json(body)
    except BadBody as exc:
        return f"BadBody: {exc}"
    if not isinstance(parsed, list):
        return "BadBody: The body must be a JSON array of events"
    if len(parsed) > MAX_BATCH_ITEMS:
        return f"BadBody: A batch holds at most {MAX_BATCH_ITEMS} events, got {len(parsed)}"
    return [check_event(item, 7, max_payload=MAX_PAYLOAD) for item in parsed]


def _fast_batch(body: bytes) -> list[Checked] | str:
    try:
        return read_events(body, 7, max_payload=MAX_PAYLOAD)
    except BadBody as exc:
        return f"BadBody: {exc}"


# Bodies that msgspec and json read differently, or that sit on a limit.
TRICKY = [
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345.0,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345e0,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":true,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":100000000000,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":99999999999,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":100000000000000,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":100000000000001,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345000000000000000,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","type":"bad"}',
    b'{"uuid":"a","type":"bad","timestamp":1622706694345,"payload":"x","type":"log"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","type":"exception"}',
    b'{"uuid":"a","uuid":"b","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","level":"WARN","level":null}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","\\u006cevel":" Warn "}',
    b'{"\\u0075uid":"a","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"\\ud800"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"\\ud83d\\ude00"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"\xed\xa0\x80"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"\xff"}',
    b'\xef\xbb\xbf{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x"}',
    '{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x"}'.encode("utf-16"),
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","extra":NaN}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","extra":1e999}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"\x01"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x"} x',
    b'  {"uuid":" a ","type":"exception","timestamp":1622706694345,"payload":"x"}\n',
    b'{"uuid":"   ","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":"","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":null,"type":"log","timestamp":1622706694345,"payload":null}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","metadata":null,'
    b'"level":null,"title":null,"origin":null}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","metadata":{},'
    b'"level":1,"title":[],"origin":false}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"' + "é".encode() * 32 + b'"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"' + "é".encode() * 33 + b'"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","metadata":"'
    + "😀".encode() * 17
    + b'"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","level":"'
    + "😀".encode() * 32
    + b'"}',
    b'{"uuid":"a","type":"log","timestamp":1622706694345,"payload":"x","level":"'
    + "😀".encode() * 33
    + b'"}',
    b'{"uuid":"' + b"u" * 64 + b'","type":"log","timestamp":1622706694345,"payload":"x"}',
    b'{"uuid":"' + b"u" * 65 + b'","type":"log","timestamp":1622706694345,"payload":"x"}',
    b"[]",
    b"{}",
    b"null",
    b"",
]


@pytest.mark.parametrize("body", TRICKY)
def test_fast_and_slow_paths_agree_on_tricky_bodies(body: bytes) -> None:
    assert _fast(body) == _slow(body)
    batch = b"[" + body + b"," + json.dumps(GOOD).encode() + b"]"
    assert _fast_batch(batch) == _slow_batch(batch)


def test_the_fast_path_takes_the_usual_events(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps(GOOD).encode()
    batch = json.dumps([GOOD, {**GOOD, "type": "exception", "level": None}]).encode()
    expected, expected_batch = _slow(body), _slow_batch(batch)

    def no_slow_path(body: bytes) -> Any:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(fullstack_input, "parse_json", no_slow_path)
    checked = read_event(body, 7, max_payload=MAX_PAYLOAD)
    assert checked == expected
    assert checked.event is not None and checked.event.level == "info"
    assert read_events(batch, 7, max_payload=MAX_PAYLOAD) == expected_batch


def test_batch_size_limit_on_both_paths() -> None:
    good = json.dumps([GOOD] * (MAX_BATCH_ITEMS + 1)).encode()
    bad = json.dumps([GOOD] * MAX_BATCH_ITEMS + ["not an event"]).encode()
    for body in (good, bad):
        assert _fast_batch(body) == _slow_batch(body)
        assert str(_fast_batch(body)).startswith("BadBody: A batch holds at most 1000 events")
    assert _fast_batch(b'{"a": 1}') == "BadBody: The body must be a JSON array of events"


# Values near every rule: right and wrong types, lengths at and past the limits.
TEXTS = st.one_of(
    st.text(max_size=70),
    st.text(alphabet="é😀 aB\t", min_size=14, max_size=70),
    st.sampled_from(["", " ", "log", "exception", "LOG", " info "]),
)
INTS = st.one_of(
    st.integers(min_value=99_999_999_990, max_value=100_000_000_010),
    st.integers(min_value=99_999_999_999_990, max_value=100_000_000_000_010),
    st.integers(),
)
VALUES = st.one_of(
    TEXTS, INTS, st.none(), st.booleans(), st.floats(), st.lists(st.integers(), max_size=2)
)
FIELDS = ["uuid", "type", "timestamp", "payload", "metadata", "level", "title", "origin"]
EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "uuid": st.one_of(TEXTS, VALUES),
        "type": st.one_of(st.sampled_from(["log", "exception", "Log", ""]), VALUES),
        "timestamp": st.one_of(INTS, VALUES),
        "payload": st.one_of(TEXTS, VALUES),
        "metadata": st.one_of(TEXTS, VALUES),
        "level": st.one_of(TEXTS, VALUES),
        "title": st.one_of(TEXTS, VALUES),
        "origin": st.one_of(TEXTS, VALUES),
        "extra": VALUES,
    },
)


def _dump(event: dict[str, Any], ascii_only: bool) -> bytes:
    return json.dumps(event, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@SETTINGS
@given(event=EVENTS, ascii_only=st.booleans())
def test_fast_and_slow_paths_agree_on_generated_events(
    event: dict[str, Any], ascii_only: bool
) -> None:
    body = _dump(event, ascii_only)
    assert _fast(body) == _slow(body)


@SETTINGS
@given(events=st.lists(st.one_of(EVENTS, VALUES), max_size=5), ascii_only=st.booleans())
def test_fast_and_slow_paths_agree_on_generated_batches(
    events: list[Any], ascii_only: bool
) -> None:
    body = json.dumps(events, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _fast_batch(body) == _slow_batch(body)


@SETTINGS
@given(value=st.recursive(
    st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.integers(
        min_value=-(2**63), max_value=2**64 - 1), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
))  # fmt: skip
def test_encode_is_what_jsonresponse_writes(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert encode(value) == expected


@SETTINGS
@given(
    text=st.text(max_size=40),
    number=st.integers(min_value=0, max_value=2**63 - 1),
    pending=st.booleans(),
)
def test_the_success_answer_is_the_encoded_seed_body(text: str, number: int, pending: bool) -> None:
    event = BackendEvent(
        number, 7, text + "-rec", "log", "info", number, "t" + text, text, "{}" + text,
        text[::-1], datetime.now(UTC), pending,
    )  # fmt: skip
    assert ok_answer(event) == encode(ok_body(event))
