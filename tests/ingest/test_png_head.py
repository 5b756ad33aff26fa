"""The PNG header fast path (:func:`png_head_size`) against Pillow's own header read:
on random and mutated PNG heads, :func:`sniff_image_head` (fast path, then Pillow) and
:func:`sniff_with_pillow` (Pillow only) give the same verdict, and a size the fast path
reads is the one Pillow reads."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from fieldreport.ingest.files import (
    NotAnImage,
    png_head_size,
    sniff_image_head,
    sniff_with_pillow,
)

MAGIC = b"\x89PNG\r\n\x1a\n"
SETTINGS = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def chunk(kind: bytes, data: bytes, *, crc_fix: int = 0) -> bytes:
    crc = (zlib.crc32(kind + data) ^ crc_fix) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(w: int, h: int, depth: int, colour: int, comp: int, filt: int, interlace: int) -> bytes:
    return struct.pack(">IIBBBBB", w, h, depth, colour, comp, filt, interlace)


@contextmanager
def max_pixels(limit: int | None) -> Iterator[None]:
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def verdict(sniff: object, data: bytes) -> tuple[str, str]:
    assert callable(sniff)
    try:
        result = sniff(io.BytesIO(data))
        assert isinstance(result, tuple)
        return result
    except NotAnImage as exc:
        return ("refused", str(exc))


def agree(data: bytes) -> tuple[int, int] | None:
    """Assert the two paths agree on ``data``; return what the fast path read."""
    size = png_head_size(data[:64])
    assert verdict(sniff_image_head, data) == verdict(sniff_with_pillow, data)
    if size is not None:
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.size) == ("PNG", size)
    return size


SIDES = st.one_of(
    st.integers(1, 40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**32 - 1, 65535, 65536]),
)
BYTE = st.integers(0, 255)
MODES = st.sampled_from([(1, 0), (8, 0), (16, 0), (8, 2), (16, 2), (4, 3), (8, 3), (8, 4), (8, 6)])
LIMITS = st.sampled_from([None, Image.MAX_IMAGE_PIXELS, 1, 100, 1000, 1600])

#: What may go wrong in a PNG's head, a few at a time (often none: a valid head).
FAULTS = st.one_of(
    st.tuples(st.just("depth"), BYTE),
    st.tuples(st.just("colour"), BYTE),
    st.tuples(st.just("compression"), BYTE),
    st.tuples(st.just("filter"), BYTE),
    st.tuples(st.just("interlace"), BYTE),
    st.tuples(st.just("crc"), st.integers(1, 2**32 - 1)),
    st.tuples(st.just("ihdr_extra"), st.binary(min_size=1, max_size=3)),
    st.tuples(st.just("ihdr_cut"), st.integers(1, 13)),
    st.tuples(
        st.just("next"),
        st.sampled_from([b"IEND", b"tEXt", b"PLTE", b"pHYs", b"idat", b"ID T", b"\0\0\0\0"]),
    ),
    st.tuples(st.just("byte"), st.tuples(st.integers(0, 60), BYTE)),
    st.tuples(st.just("cut"), st.integers(0, 60)),
    st.tuples(st.just("limit"), st.integers(-1, 1)),  # at the pixel limit: w * h + this
)


@SETTINGS
@given(
    w=SIDES,
    h=SIDES,
    mode=MODES,
    idat=st.binary(max_size=40),
    faults=st.lists(FAULTS, max_size=3),
    limit=LIMITS,
)
def test_the_fast_path_agrees_with_pillow(
    w: int,
    h: int,
    mode: tuple[int, int],
    idat: bytes,
    faults: list[tuple[str, Any]],
    limit: int | None,
) -> None:
    f: dict[str, Any] = dict(faults)
    depth, colour = mode
    header = ihdr(
        w,
        h,
        int(f.get("depth", depth)),
        int(f.get("colour", colour)),
        int(f.get("compression", 0)),
        int(f.get("filter", 0)),
        int(f.get("interlace", 0)),
    )
    header += f.get("ihdr_extra", b"")
    header = header[: len(header) - int(f.get("ihdr_cut", 0))]
    crc_fix = int(f.get("crc", 0))
    after: bytes = f.get("next", b"IDAT")
    data = bytearray(
        MAGIC + chunk(b"IHDR", header, crc_fix=crc_fix) + chunk(after, idat) + chunk(b"IEND", b"")
    )
    for kind, value in faults:
        if kind == "byte":
            at, byte = value
            if at < len(data):
                data[at] = byte
    if "cut" in f:
        del data[int(f["cut"]) :]
    if "limit" in f and w * h > 0:
        limit = w * h + int(f["limit"])
    with max_pixels(limit):
        agree(bytes(data))


@SETTINGS
@given(
    w=st.integers(1, 60),
    h=st.integers(1, 60),
    mode=st.sampled_from(["1", "L", "P", "RGB", "RGBA", "LA", "I;16"]),
    limit=LIMITS,
)
def test_real_pngs_take_the_fast_path_unless_pillow_would_refuse_them(
    w: int, h: int, mode: str, limit: int | None
) -> None:
    out = io.BytesIO()
    Image.new(mode, (w, h)).save(out, "PNG")
    data = out.getvalue()
    with max_pixels(limit):
        size = agree(data)
        wanted = limit is None or w * h <= limit
        assert (size == (w, h)) == (wanted and data[37:41] == b"IDAT")


def test_other_chunk_orders_go_to_pillow_with_the_same_verdict() -> None:
    head = ihdr(10, 10, 8, 2, 0, 0, 0)
    data = MAGIC + chunk(b"IHDR", head) + chunk(b"gAMA", b"\0\0\xb1\x8f")
    data += chunk(b"IDAT", zlib.compress(b"\0" * 31 * 10)) + chunk(b"IEND", b"")
    assert png_head_size(data) is None
    assert sniff_image_head(io.BytesIO(data)) == ("image/png", "png")


def test_bombs_go_to_pillow_and_are_refused() -> None:
    data = MAGIC + chunk(b"IHDR", ihdr(100_000, 100_000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b"")
    assert png_head_size(data) is None
    with pytest.raises(NotAnImage), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        sniff_image_head(io.BytesIO(data))


def test_truncated_images_allowed_leaves_every_verdict_to_pillow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = MAGIC + chunk(b"IHDR", ihdr(10, 10, 8, 2, 0, 0, 0)) + chunk(b"IDAT", b"")
    assert png_head_size(data) == (10, 10)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert png_head_size(data) is None


@pytest.mark.parametrize("colour", range(8))
def test_every_depth_and_colour_type_as_pillow_reads_it(colour: int) -> None:
    """The fast path's own table of ``(bit depth, colour type)`` pairs (the PNG
    specification's) accepts exactly the pairs Pillow reads: all 256 depths of each type."""
    for depth in range(256):
        data = MAGIC + chunk(b"IHDR", ihdr(4, 3, depth, colour, 0, 0, 0)) + chunk(b"IDAT", b"")
        size = agree(data)
        assert (size is not None) == (verdict(sniff_with_pillow, data)[0] == "image/png"), depth
