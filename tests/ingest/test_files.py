"""The screenshot check (PNG chunk walk, Pillow header) and the upload spool, on real files
in memory and on disk."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO

import pytest
from PIL import Image

from fieldreport.ingest.files import (
    SPOOL_MAX_MEMORY,
    NotAnImage,
    Spool,
    check_png,
    sniff_image,
    sniff_image_head,
    spool,
)
from tests.support.images import gif_bytes, jpeg_bytes, png_bytes, webp_bytes


def _in_memory(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


def _on_disk(data: bytes) -> IO[bytes]:
    fh = tempfile.TemporaryFile()  # noqa: SIM115
    fh.write(data)
    fh.seek(0)
    return fh


@pytest.fixture(params=[_in_memory, _on_disk], ids=["memory", "disk"])
def where(request: pytest.FixtureRequest) -> Iterator[Callable[[bytes], IO[bytes]]]:
    """Makes the file to check, in memory or on disk (closed after the test)."""
    made: list[IO[bytes]] = []

    def make(data: bytes) -> IO[bytes]:
        made.append(request.param(data))
        return made[-1]

    yield make
    for fh in made:
        fh.close()


def _chunks(png: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk of a PNG."""
    out, pos = [], 8
    while pos < len(png):
        length, kind = struct.unpack_from(">I4s", png, pos)
        out.append((pos, kind))
        pos += 12 + length
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _noise_png(side: int) -> bytes:
    """A PNG of several IDAT chunks (noise does not compress)."""
    img = Image.frombytes("RGB", (side, side), bytes(range(256)) * (side * side * 3 // 256 + 1))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0)
    return out.getvalue()


@pytest.mark.parametrize(
    ("maker", "expected"),
    [
        (png_bytes, ("image/png", "png")),
        (jpeg_bytes, ("image/jpeg", "jpg")),
        (webp_bytes, ("image/webp", "webp")),
    ],
)
def test_accepts_png_jpeg_webp(
    where: Callable[[bytes], IO[bytes]],
    maker: Callable[[], bytes],
    expected: tuple[str, str],
) -> None:
    fh = where(maker())
    assert sniff_image(fh) == expected
    assert fh.tell() == 0  # ready to be stored


def test_multi_chunk_png_is_walked_to_iend(where: Callable[[bytes], IO[bytes]]) -> None:
    png = _noise_png(700)  # ~1.5 MB: past the in-memory spool on disk
    assert sum(kind == b"IDAT" for _, kind in _chunks(png)) > 2
    assert sniff_image(where(png)) == ("image/png", "png")


def test_png_with_a_bad_crc_anywhere_is_refused(where: Callable[[bytes], IO[bytes]]) -> None:
    png = _noise_png(200)
    for pos, kind in _chunks(png):
        if kind == b"IEND":
            continue
        broken = bytearray(png)
        broken[pos + 8] ^= 0xFF  # the chunk's first data byte: its CRC no longer matches
        with pytest.raises(NotAnImage, match="PNG, JPEG or WebP"):
            sniff_image(where(bytes(broken)))


def test_truncated_png_is_refused(where: Callable[[bytes], IO[bytes]]) -> None:
    png = _noise_png(200)
    iend = _chunks(png)[-1][0]
    for cut in (iend, iend + 4, iend - 1, iend - 4, len(png) // 2, 40):
        with pytest.raises(NotAnImage):
            sniff_image(where(png[:cut]))


def test_png_chunk_walk_matches_pillow_on_edges() -> None:
    png = png_bytes()
    # Bytes after IEND, and IEND's own CRC, are not looked at (as Pillow's verify()).
    assert sniff_image(_in_memory(png + b"trailing"))[0] == "image/png"
    assert sniff_image(_in_memory(png[:-4]))[0] == "image/png"
    # A chunk whose type is not four letters or digits is a broken file.
    iend = _chunks(png)[-1][0]
    odd = png[:iend] + _chunk(b"a-b!", b"x") + png[iend:]
    with pytest.raises(NotAnImage):
        sniff_image(_in_memory(odd))
    # A chunk claiming more bytes than the file has.
    huge = png[:iend] + struct.pack(">I4s", 1 << 30, b"tEXt") + png[iend:]
    with pytest.raises(NotAnImage):
        sniff_image(_in_memory(huge))


def test_garbage_gif_and_bombs_are_refused() -> None:
    with pytest.raises(NotAnImage, match="PNG, JPEG or WebP image"):
        sniff_image(_in_memory(b"GIF89a not png"))
    with pytest.raises(NotAnImage, match="is a GIF image"):
        sniff_image(_in_memory(gif_bytes()))
    with pytest.raises(NotAnImage):
        sniff_image(_in_memory(b""))
    # A valid PNG declaring more pixels than Pillow's limit (but less than twice it,
    # where Pillow only warns): refused by its size, never decoded.
    side = int((Image.MAX_IMAGE_PIXELS or 0) ** 0.5) + 10
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(NotAnImage):
        sniff_image(_in_memory(bomb))


async def test_spool_keeps_small_files_in_memory_without_copies() -> None:
    part = b"x" * 1000
    s = Spool()
    s.write(part)
    fh = await s.finish()
    assert isinstance(fh, io.BytesIO) and fh.read() is part
    assert isinstance(spool(part), io.BytesIO)


async def test_spool_moves_large_files_to_disk() -> None:
    s = Spool()
    piece = bytes(range(256)) * 256  # 64 KiB
    pieces = SPOOL_MAX_MEMORY // len(piece) * 3 + 1
    held = drains = 0
    for _ in range(pieces):
        s.write(piece)
        held += len(piece)
        assert s.must_drain == (held > SPOOL_MAX_MEMORY)  # never much more than 1 MiB held
        if s.must_drain:
            await s.drain()
            held, drains = 0, drains + 1
    assert drains == 2
    fh = await s.finish()
    assert not isinstance(fh, io.BytesIO) and fh.fileno() >= 0
    assert fh.read() == piece * pieces and s.size == len(piece) * pieces
    s.close()
    assert fh.closed
    big = spool(b"y" * (SPOOL_MAX_MEMORY + 1))
    assert not isinstance(big, io.BytesIO) and big.read(3) == b"yyy"
    big.close()


def test_png_header_then_chunks_apart() -> None:
    """What the report path runs: the header on the event loop, the chunks where the blob is
    written; together they refuse what :func:`sniff_image` refuses."""
    png = _noise_png(200)
    assert sniff_image_head(_in_memory(png)) == ("image/png", "png")
    check_png(png)
    broken = bytearray(png)
    broken[len(png) // 2] ^= 1
    assert sniff_image_head(_in_memory(bytes(broken))) == ("image/png", "png")
    with pytest.raises(NotAnImage, match="PNG, JPEG or WebP"):
        check_png(bytes(broken))
    with pytest.raises(NotAnImage):
        check_png(memoryview(png)[: len(png) // 2])
