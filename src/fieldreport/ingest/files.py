"""Uploaded files: content sniffing, safe display names and spooling to temporary files."""

from __future__ import annotations

import asyncio
import io
import mmap
import re
import struct
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageFile
from zlib_ng.zlib_ng import crc32

IMAGE_TYPES = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
}
SPOOL_MAX_MEMORY = 1024 * 1024


@dataclass
class IncomingFile:
    """A file part of an incoming report, spooled to memory or disk (never kept whole in RAM)."""

    role: str  # "screenshot" | "attachment"
    filename: str  # a safe display name, never used as a path
    content_type: str
    file: IO[bytes]
    #: A check of the file's bytes still to pass, run by the blob store where it writes
    #: them, before it writes any (a PNG's chunks and CRCs: :func:`check_png`).
    check: Callable[[bytes | memoryview], None] | None = None

    def close(self) -> None:
        self.file.close()


class NotAnImage(ValueError):
    pass


def sniff_image(fh: IO[bytes]) -> tuple[str, str]:
    """Return ``(content_type, extension)`` of a PNG, JPEG or WebP judged by its bytes:
    :func:`sniff_image_head`, then for a PNG :func:`check_png` of the whole file."""
    content_type, ext = sniff_image_head(fh)
    if content_type == "image/png" and not _png_complete(fh):
        raise NotAnImage(NOT_AN_IMAGE)
    return content_type, ext


def sniff_image_head(fh: IO[bytes]) -> tuple[str, str]:
    """Return ``(content_type, extension)`` of a PNG, JPEG or WebP judged by its header.

    The common PNG is judged by :func:`png_head_size`; anything else, Pillow reads the
    header of (format, size: no decoding, so a decompression bomb costs nothing and is
    refused by its pixel count); a JPEG or WebP is then checked by Pillow's
    ``verify()``. A PNG must also be whole, which this does not check: pass its bytes to
    :func:`check_png` (:func:`sniff_image` does both).
    """
    fh.seek(0)
    head = fh.read(_PNG_HEAD)
    fh.seek(0)
    if png_head_size(head) is not None:
        return IMAGE_TYPES["PNG"]  # what Pillow would say, in ~1 µs instead of ~17
    return sniff_with_pillow(fh)


def sniff_with_pillow(fh: IO[bytes]) -> tuple[str, str]:
    """:func:`sniff_image_head` without its PNG fast path (:func:`png_head_size`)."""
    fh.seek(0)
    try:
        with Image.open(fh) as img:
            kind = img.format
            width, height = img.size
            if kind != "PNG":
                img.verify()
    except Exception as exc:  # Pillow raises many types for garbage input
        raise NotAnImage(NOT_AN_IMAGE) from exc
    finally:
        fh.seek(0)
    most = Image.MAX_IMAGE_PIXELS
    if most is not None and width * height > most:  # a decompression bomb
        raise NotAnImage(NOT_AN_IMAGE)
    if kind not in IMAGE_TYPES:
        raise NotAnImage(f"`file` is a {kind} image; send PNG, JPEG or WebP")
    return IMAGE_TYPES[kind]


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IHDR_AND_IDAT = struct.Struct(">8sI4s13sII4s")  # magic, IHDR, the next chunk's header
_PNG_HEAD = _IHDR_AND_IDAT.size
#: The ``(bit depth, colour type)`` pairs the PNG specification allows (ISO/IEC 15948, table
#: 11.1), all of which Pillow reads: greyscale, indexed, truecolour, greyscale with alpha,
#: truecolour with alpha. Spelled out here rather than imported from Pillow's private
#: ``PngImagePlugin._MODES`` (a test checks that Pillow still reads each of them).
_PNG_MODES = frozenset(
    {
        *((depth, 0) for depth in (1, 2, 4, 8, 16)),  # greyscale
        *((depth, 3) for depth in (1, 2, 4, 8)),  # indexed
        *((depth, colour) for depth in (8, 16) for colour in (2, 4, 6)),  # the rest
    }
)


def png_head_size(head: bytes) -> tuple[int, int] | None:
    """The ``(width, height)`` of a PNG whose first bytes are ``head``, when it is the
    common case that can be judged here as :func:`sniff_image_head`'s Pillow path would:
    a 13-byte ``IHDR`` with a correct CRC, directly followed by an ``IDAT`` chunk, with a
    bit depth and colour type Pillow reads, filter method 0, both sizes above zero and at
    most ``Image.MAX_IMAGE_PIXELS`` pixels. Else ``None``: ask Pillow (other chunks before
    ``IDAT``, other formats, anything odd or refused, decompression bombs). Like Pillow's
    header read, this checks neither the compression method nor the interlace method."""
    if len(head) < _PNG_HEAD or ImageFile.LOAD_TRUNCATED_IMAGES:
        return None
    magic, length, kind, ihdr, crc, _, idat = _IHDR_AND_IDAT.unpack_from(head)
    if magic != _PNG_MAGIC or length != 13 or kind != b"IHDR" or idat != b"IDAT":
        return None
    if crc32(ihdr, crc32(b"IHDR")) != crc:
        return None
    width, height = _PNG_SIZE.unpack_from(ihdr)
    if width == 0 or height == 0 or ihdr[11] != 0 or (ihdr[8], ihdr[9]) not in _PNG_MODES:
        return None
    most = Image.MAX_IMAGE_PIXELS
    if most is not None and width * height > most:
        return None
    return width, height


_PNG_SIZE = struct.Struct(">II")


def check_png(data: bytes | memoryview) -> None:
    """Raise :class:`NotAnImage` unless ``data`` (a PNG whose header
    :func:`sniff_image_head` accepted) holds every chunk up to ``IEND`` with a correct CRC
    (what Pillow's ``verify()`` checks, at C speed). Runs in the worker thread's trip that
    hashes and writes the file (``BlobStore.create(check=...)``), not on the event loop: when
    it ran there in 5 KiB pieces, each piece gave the GIL up and waited to get it back from a
    worker thread (~700 µs of waiting per screenshot under load)."""
    if not _png_chunks_ok(data):
        raise NotAnImage(NOT_AN_IMAGE)


NOT_AN_IMAGE = "`file` must be a PNG, JPEG or WebP image"
_PNG_CHUNK = struct.Struct(">I4s")
_PNG_CRC = struct.Struct(">I")
_CHUNK_TYPE = re.compile(rb"\w\w\w\w")  # as Pillow's PNG reader requires


def _png_complete(fh: IO[bytes]) -> bool:
    """Whether a PNG (signature already checked) holds well-formed chunks up to ``IEND``,
    each but ``IEND`` with a correct CRC. Read in place: an in-memory file's bytes, or a
    file on disk mapped (never read into memory whole)."""
    if isinstance(fh, io.BytesIO):
        return _png_chunks_ok(fh.getvalue())  # the file's own bytes, not a copy
    with (
        mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        memoryview(mapped) as view,
    ):
        return _png_chunks_ok(view)


def _png_chunks_ok(data: bytes | memoryview) -> bool:
    view = memoryview(data)
    try:
        end = len(view)
        pos = 8
        while pos + 8 <= end:
            length, kind = _PNG_CHUNK.unpack_from(view, pos)
            if not _CHUNK_TYPE.fullmatch(kind):
                return False
            if kind == b"IEND":
                return True
            data_end = pos + 8 + length
            if data_end + 4 > end:
                return False
            with view[pos + 4 : data_end] as chunk:
                if crc32(chunk) != _PNG_CRC.unpack_from(view, data_end)[0]:
                    return False
            pos = data_end + 4
        return False
    finally:
        view.release()


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_filename(name: str | None, default: str, max_len: int = 120) -> str:
    """A display name from a client's filename: no directories, controls or odd characters."""
    if not name:
        return default
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE.sub("_", base).strip(" ._")
    if not base:
        return default
    if len(base) > max_len:
        stem, dot, ext = base.rpartition(".")
        base = (
            (stem[: max_len - len(ext) - 1] + dot + ext)
            if dot and len(ext) < 10
            else base[:max_len]
        )
    return base


def with_extension(name: str, ext: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}.{ext}"


_SAFE_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def safe_content_type(value: str | None) -> str:
    value = (value or "").split(";", 1)[0].strip().lower()
    return (
        value
        if _SAFE_CONTENT_TYPE.match(value) and len(value) <= 127
        else "application/octet-stream"
    )


def spool(data: bytes) -> IO[bytes]:
    """``data`` as a file: in memory (not copied) up to :data:`SPOOL_MAX_MEMORY`, else on disk."""
    if len(data) <= SPOOL_MAX_MEMORY:
        return io.BytesIO(data)
    fh = tempfile.TemporaryFile()  # noqa: SIM115
    fh.write(data)
    fh.seek(0)
    return fh


class Spool:
    """A file arriving in pieces: kept in memory up to :data:`SPOOL_MAX_MEMORY` (then a
    ``BytesIO`` of one join), past that in a temporary file on disk, written there about a
    megabyte at a time on a worker thread (:meth:`drain`) so the event loop never waits on
    the disk and never holds much more than a megabyte of it."""

    def __init__(self) -> None:
        self.size = 0
        self._parts: list[bytes | memoryview] = []
        self._pending = 0
        self._disk: IO[bytes] | None = None

    def write(self, data: bytes | memoryview) -> None:
        self._parts.append(data)
        self._pending += len(data)
        self.size += len(data)

    @property
    def must_drain(self) -> bool:
        return self._pending > SPOOL_MAX_MEMORY

    async def drain(self) -> None:
        """Move what is held in memory to the file on disk."""
        if self._disk is None:
            self._disk = tempfile.TemporaryFile()  # noqa: SIM115
        parts, self._parts, self._pending = self._parts, [], 0
        await asyncio.to_thread(self._disk.writelines, parts)

    async def finish(self) -> IO[bytes]:
        """The whole file, positioned at its start."""
        if self._disk is None:
            parts = self._parts
            return io.BytesIO(parts[0] if len(parts) == 1 else b"".join(parts))
        if self._parts:
            await self.drain()
        self._disk.seek(0)
        return self._disk

    def close(self) -> None:
        self._parts = []
        if self._disk is not None:
            self._disk.close()
