"""The web batch check: the fast msgspec path never accepts what the reference parser refuses.

The reference is the standard library's parser as the check used it alone before (objects
replaced by a sentinel, NaN/Infinity refused): every verdict and every refusal's wording must
stay the same, whichever path decides.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldreport.ingest.errors import HTTPProblem
from fieldreport.ingest.session_body import EventsArrayCheck, fast_events_count
from tests.support.sessions import events

_SENTINEL = object()


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_REFERENCE = json.JSONDecoder(
    object_pairs_hook=lambda pairs: _SENTINEL, parse_constant=_refuse_constant
)


def reference(data: bytes) -> int | str:
    """The event count, or the refusal's detail (as the check words it)."""
    try:
        value = _REFERENCE.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return str(exc)[:200]
    if not isinstance(value, list):
        return "the body is not an array"
    if not all(item is _SENTINEL for item in value):
        return "an item is not an object"
    return len(value)


def verdict(data: bytes) -> int | str:
    check = EventsArrayCheck()
    check.feed(data)
    try:
        check.finish()
    except HTTPProblem as problem:
        assert problem.status == 400 and problem.code == "invalid_batch"
        prefix = "a web batch must be a JSON array of rrweb events: "
        assert problem.message.startswith(prefix)
        return problem.message[len(prefix) :]
    return check.count


def assert_same(data: bytes) -> None:
    expected = reference(data)
    fast = fast_events_count(data)
    if fast is not None:  # the fast path only ever accepts, and only what the reference does
        assert fast == expected, data
    assert verdict(data) == expected, data


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(events(0, 40)).encode(),
        b" [ ] \n",
        b"[{}]",
        b'[{"a": "\\ud83d\\ude00", "b": "\xc3\xa9\xe2\x82\xac", "c": "\x7f"}]',
        b'[{"a": 1e999, "b": -0, "c": 0.5E-3, "d": [true, false, null, {"e": []}]}]',
        b'[{"a": 1, "a": 2}]',
        # the reference accepts these, msgspec does not: the slow path must accept them
        b'[{"a": "\\ud800"}]',
        b'[{"\\udc00": "x"}]',
        b'[{"a": "\\ud800\\ud800"}]',
        # refused, each with the reference parser's own words
        b'{"type": 1}',
        b"[1, 2]",
        b'[{"a": 1}, null]',
        b'[{"a": 1}, []]',
        b'[{"a": NaN}]',
        b'[{"a": -Infinity}]',
        b'[{"a": 1}',
        b'[{"a": 1}] [{"b": 2}]',
        b'[{"a": 1}],[{"b": 2}]',
        b'[{"a": 1},]',
        b'[{"a": 01}]',
        b'[{"a": 1.}]',
        b'[{"a": "\x01"}]',
        b'[{"a": "\\x"}]',
        b'[{"a": "\\u12"}]',
        b'[{"a": "\xff"}]',
        b'[{"a": "\xed\xa0\x80"}]',  # a surrogate encoded in UTF-8 is not UTF-8
        b"\xef\xbb\xbf[{}]",
        b"[\x0c{}]",
        b"not json",
        b"",
    ],
)
def test_same_verdict_as_the_reference(data: bytes) -> None:
    assert_same(data)


def test_nesting_deeper_than_the_parser_goes_is_a_400_not_a_crash() -> None:
    deep = b'[{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
    assert verdict(deep) == "nested too deeply"


def test_integers_past_pythons_conversion_limit_are_still_refused() -> None:
    limit = sys.get_int_max_str_digits()
    assert limit > 0
    for digits in (limit - 1, limit, limit + 1, 3 * limit + 7):
        for where in (0, 5, limit // 2):
            doc = b'[{"pad": "' + b"x" * where + b'", "n": -' + b"7" * digits + b"}]"
            assert_same(doc)
    too_long = b'[{"n": ' + b"1" * (limit + 1) + b"}]"
    assert isinstance(verdict(too_long), str)
    # a long run of digits inside a string is only text: accepted either way
    assert verdict(b'[{"s": "' + b"1" * (3 * limit) + b'"}]') == 1


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_noise = st.sampled_from(
    [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"\\u", b"d800", b"0", b"-", b".", b"e",
     b"1", b" ", b"\n", b"\x00", b"\x1f", b"\x7f", b"\xff", b"\xc3", b"\xed\xa0\x80",
     b"null", b"tru", b"NaN", b"Infinity", b"\\ud800", b"\\udc00", b"\xef\xbb\xbf"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(_json_values, max_size=5),
    ascii_only=st.booleans(),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 2), _noise), max_size=3),
)
def test_mutated_batches_get_the_reference_verdict(
    items: list[Any], ascii_only: bool, edits: list[tuple[int, int, bytes]]
) -> None:
    events_or_not = [item if i % 2 else {"v": item} for i, item in enumerate(items)]
    data = bytearray(json.dumps(events_or_not, ensure_ascii=ascii_only).encode("utf-8"))
    for position, kind, noise in edits:  # insert, replace or delete at a position
        at = position % (len(data) + 1)
        if kind == 0:
            data[at:at] = noise
        elif kind == 1:
            data[at : at + len(noise)] = noise
        else:
            del data[at : at + 1]
    assert_same(bytes(data))
