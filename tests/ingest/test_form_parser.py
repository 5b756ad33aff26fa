"""The multipart push parser against the ``multipart`` package's, whose grammar and messages
it keeps: the same parts, bytes and refusals for valid, odd and broken bodies, fed whole
and split at every size."""

from __future__ import annotations

import random

import multipart
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldreport.ingest.form_parser import CACHED_HEAD, FormError, FormParser, PartHead, Truncated

B = "b0undary"
MAX_PARTS = 6


def _part(head: str, value: bytes = b"v") -> bytes:
    return f"--{B}\r\n{head}\r\n\r\n".encode("latin-1") + value + b"\r\n"


def _fd(name: str, extra: str = "") -> str:
    return f'Content-Disposition: form-data; name="{name}"{extra}'


END = f"--{B}--\r\n".encode()
VALID = [
    _part(_fd("a"), b"x") + END,
    _part(_fd("a"), b"") + _part(_fd("b"), b"\r\n--b0und\r\n--b0undar") + END,
    b"preamble\r\n" + _part(_fd("a")) + END + b"epilogue\r\n--" + B.encode() + b"--",
    _part(_fd("f", '; filename="s.png"') + "\r\nContent-Type: image/png", bytes(range(256)) * 9)
    + END,
    _part("content-disposition: form-data; name=a\r\nX-Extra: 1\r\ncontent-type: text/plain") + END,
    _part(_fd("a") + "\r\nContent-Type: a/b\r\nContent-Type: c/d") + END,
    _part('Content-Disposition: form-data;\r\n name="folded"') + END,
    _part(_fd("a") + "\r\nContent-Length: 3", b"abc") + END,
    _part(_fd("é", '; filename="écran.png"'), "Grüße".encode()) + END,
    _part('Content-Disposition: form-data; name="a%22b"; filename="C:\\\\x\\\\y.txt"') + END,
    _part("Content-Disposition: form-data") + END,  # no name: the caller refuses it
    _part(_fd("x" * 1500)) + END,  # a header block too long for the cache
    f"--{B}--\r\n".encode(),
    b"\r\n" + _part(_fd("a")) + END,
]
BROKEN = [
    b"",
    b"no boundary anywhere",
    _part(_fd("a")),
    _part(_fd("a")) + END[:-5],
    b"xx" + _part(_fd("a")) + END,
    f"--{B}\nContent-Disposition: x\r\n".encode(),
    f"--{B}zz".encode() + _part(_fd("a")) + END,
    _part(_fd("a")) + f"--{B}zz".encode(),
    _part("X-Nothing: 1") + END,
    _part("Content-Disposition: attachment; name=a") + END,
    _part(" folded first") + END,
    _part(_fd("a") + "\r\n   ") + END,
    _part(_fd("a") + "\r\nno colon") + END,
    _part(_fd("a") + "\r\nBad Name: 1") + END,
    _part(_fd("a") + "\r\nContent-Type: " + "t" * 5000) + END,
    _part(_fd("a") + "\r\nX: 1" * 8) + END,
    _part(_fd("a") + "\r\nContent-Length: 2\r\nContent-Length: 2", b"ab") + END,
    _part(_fd("a") + "\r\nContent-Length: +2", b"ab") + END,
    _part(_fd("a") + "\r\nContent-Length: 2", b"abc") + END,
    _part(_fd("a") + "\r\nContent-Length: 4", b"abc") + END,
    f"--{B}\r\n".encode() + _fd("a").encode() + b"\nX: 1\r\n\r\nv\r\n" + END,
    f"--{B}\r\n".encode() + b"X" * 5000,
    b"".join(_part(_fd(str(i))) for i in range(MAX_PARTS + 1)) + END,
]


class _Sink:
    def __init__(self) -> None:
        self.parts: list[list[object]] = []

    def start(self, head: PartHead) -> None:
        self.parts.append([head.name, head.filename, head.content_type, b""])

    def data(self, chunk: memoryview) -> None:
        self.parts[-1][3] += bytes(chunk)  # type: ignore[operator]

    def end(self) -> None:
        self.parts[-1].append("end")


def _ours(body: bytes, size: int) -> tuple[list[list[object]], str | None]:
    sink = _Sink()
    try:
        parser = FormParser(B, sink, MAX_PARTS)
        for at in range(0, len(body), size):
            parser.feed(body[at : at + size])
        parser.close()
    except Truncated:
        return sink.parts, "truncated"
    except FormError as exc:
        return sink.parts, str(exc)
    return sink.parts, None


def _theirs(body: bytes, size: int) -> tuple[list[list[object]], str | None]:
    parts: list[list[object]] = []
    parser = multipart.PushMultipartParser(B, max_segment_count=MAX_PARTS, header_charset="latin-1")
    try:
        for at in range(0, len(body), size):
            for event in parser.parse(body[at : at + size]):
                if event is None:
                    parts[-1].append("end")
                elif isinstance(event, bytes):
                    parts[-1][3] += event  # type: ignore[operator]
                else:
                    name = event.name or ""
                    parts.append([name, event.filename, event.header("Content-Type"), b""])
        try:
            parser.close()
        except multipart.ParserError:
            return parts, "truncated"
    except multipart.MultipartError as exc:
        return parts, str(exc.args[0])
    return parts, None


@pytest.mark.parametrize("body", VALID + BROKEN)
def test_same_parts_and_refusals_as_the_multipart_package(body: bytes) -> None:
    sizes = sorted({1, 2, 3, 7, 64, max(1, len(body))})
    for size in sizes:
        assert _ours(body, size) == _theirs(body, size), size


def test_valid_bodies_parse() -> None:
    for body in VALID:
        assert _ours(body, len(body))[1] is None
    parts, error = _ours(VALID[3], 5)
    assert error is None
    assert parts == [["f", "s.png", "image/png", bytes(range(256)) * 9, "end"]]


def test_random_bodies_split_anywhere() -> None:
    rng = random.Random(5)
    for _ in range(200):
        pieces = rng.sample(VALID[:10], 3)
        body = b"".join(p[: p.rindex(END)] for p in pieces) + END
        cut = rng.randrange(len(body) + 1) if rng.random() < 0.3 else len(body)
        size = rng.choice([1, 5, 13, 100, 4096])
        assert _ours(body[:cut], size) == _theirs(body[:cut], size)


def test_boundary_checks() -> None:
    for bad in ("", "a\nb"):
        with pytest.raises(FormError):
            FormParser(bad, _Sink(), 1)


def test_large_header_blocks_are_not_cached() -> None:
    head = _fd("x" * (CACHED_HEAD + 10))
    parts, error = _ours(_part(head) + END, 10_000)
    assert error is None and parts[0][0] == "x" * (CACHED_HEAD + 10)


_PIECES = [
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    f"--{B}".encode(),
    f"\r\n--{B}".encode(),
    f"\r\n--{B}--".encode(),
    b": ",
    b" ",
    b"\t",
    _fd("a").encode(),
    b"Content-Length: 2",
    b"Content-Type: x/y",
    b"x" * 40,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID + BROKEN),
    edits=st.lists(
        st.tuples(
            st.floats(0, 1),
            st.integers(0, 3),
            st.one_of(st.sampled_from(_PIECES), st.binary(max_size=6)),
        ),
        max_size=4,
    ),
    size=st.integers(1, 80),
)
def test_mutated_bodies_agree_with_the_multipart_package(
    base: bytes, edits: list[tuple[float, int, bytes]], size: int
) -> None:
    """Bodies with bytes inserted, deleted or replaced anywhere (delimiter pieces, line
    breaks, header fragments, random bytes), fed in random chunk sizes: the same parts,
    bytes and refusals as the package's parser."""
    body = bytearray(base)
    for where, how, piece in edits:
        at = round(where * len(body))
        if how == 0:
            body[at:at] = piece
        elif how == 1:
            del body[at : at + len(piece) + 1]
        else:
            body[at : at + len(piece)] = piece
    data = bytes(body)
    assert _ours(data, size) == _theirs(data, size)
