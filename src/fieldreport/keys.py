"""Project keys: random tokens shown once, stored only as SHA-256 hashes.

Keys carry 256 bits of randomness, so a fast hash is safe (nothing to brute-force) and
lets the ingest path find a project by key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

KeyKind = Literal["public", "secret"]
PREFIX: dict[KeyKind, str] = {"public": "frpub_", "secret": "frsec_"}


def generate_key(kind: KeyKind) -> str:
    return PREFIX[kind] + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    """A short, non-secret prefix to recognise a key by (``frpub_AbC1…``)."""
    return key[: len(key.split("_", 1)[0]) + 5]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
