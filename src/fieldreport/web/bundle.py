"""The committed widget bundle in ``static/``: its files, their hashes and gzipped forms."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'


@dataclass(frozen=True)
class Bundle:
    version: str
    widget: Asset
    recorder: Asset

    def by_name(self, name: str) -> Asset | None:
        """The versioned names: ``recorder.<hash>.js`` and ``widget.<hash>.js``."""
        if name == self.recorder.name:
            return self.recorder
        if name == self.versioned_widget_name:
            return self.widget
        return None

    @property
    def versioned_widget_name(self) -> str:
        return f"widget.{self.widget.sha256[:12]}.js"


def _asset(name: str) -> Asset:
    body = (STATIC / name).read_bytes()
    return Asset(
        name=name,
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        sha256=hashlib.sha256(body).hexdigest(),
    )


@cache
def load_bundle() -> Bundle:
    """Read the bundle once per process (package data never changes under a running server)."""
    manifest = json.loads((STATIC / "manifest.json").read_text("utf-8"))
    return Bundle(
        version=str(manifest["version"]),
        widget=_asset(manifest["widget"]["file"]),
        recorder=_asset(manifest["recorder"]["file"]),
    )
