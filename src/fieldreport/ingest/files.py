"""Uploaded files: content sniffing, safe display names and spooling to temporary files."""

from __future__ import annotations

import re
import tempfile
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image

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

    def close(self) -> None:
        self.file.close()


class NotAnImage(ValueError):
    pass


def sniff_image(fh: IO[bytes]) -> tuple[str, str]:
    """Return ``(content_type, extension)`` of a PNG, JPEG or WebP judged by its bytes."""
    fh.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as img:
                kind = img.format
                img.verify()
    except Exception as exc:  # Pillow raises many types for garbage input
        raise NotAnImage("`file` must be a PNG, JPEG or WebP image") from exc
    finally:
        fh.seek(0)
    if kind not in IMAGE_TYPES:
        raise NotAnImage(f"`file` is a {kind} image; send PNG, JPEG or WebP")
    return IMAGE_TYPES[kind]


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
    fh = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115
    fh.write(data)
    fh.seek(0)
    return fh
