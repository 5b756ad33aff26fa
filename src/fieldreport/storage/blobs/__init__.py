"""Blob storage: one interface over a local directory and S3-compatible storage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from fieldreport.storage.blobs.base import (
    BlobNotFound,
    BlobSource,
    BlobStore,
    BlobStoreError,
    WrittenBlob,
    check_key,
)
from fieldreport.storage.blobs.local import LocalBlobStore

__all__ = [
    "BlobNotFound",
    "BlobSource",
    "BlobStore",
    "BlobStoreError",
    "LocalBlobStore",
    "WrittenBlob",
    "check_key",
    "open_blob_store",
]


def open_blob_store(
    url: str,
    *,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
) -> BlobStore:
    """Open the store named by ``url``: ``file:///path``, a plain path, or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalBlobStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        from fieldreport.storage.blobs.s3 import S3BlobStore

        return S3BlobStore(
            url,
            endpoint=s3_endpoint,
            region=s3_region,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
        )
    raise ValueError(f"unsupported blob store URL scheme {parsed.scheme!r} (use file:// or s3://)")
