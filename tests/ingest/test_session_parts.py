"""The pieces behind session ingest: tokens, the secret file, gzip bounds, JSON checks, buckets."""

from __future__ import annotations

import gzip
import json
import os
import stat
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from fieldreport.api.session_views import events_stream
from fieldreport.ingest.errors import HTTPProblem
from fieldreport.ingest.ratelimit import RateLimiter
from fieldreport.ingest.session_body import INFLATE_STEP, EventsArrayCheck, GzipInflater
from fieldreport.ingest.session_tokens import (
    InvalidToken,
    SessionClaims,
    TokenSigner,
    load_secret,
)
from fieldreport.settings import Settings
from fieldreport.storage.blobs import LocalBlobStore
from fieldreport.storage.session_batches import Batch
from tests.support.sessions import events, gzip_bomb

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _claims(expires: int) -> SessionClaims:
    return SessionClaims(
        "4f1c7a2e-1111-4222-8333-944455556666", 7, "web", "https://a.example", expires
    )


def test_token_roundtrip_and_tampering() -> None:
    signer = TokenSigner(b"s" * 32)
    exp = int(NOW.timestamp()) + 60
    token = signer.issue(_claims(exp))
    assert signer.verify(token, now=NOW) == _claims(exp)
    with pytest.raises(InvalidToken):
        TokenSigner(b"t" * 32).verify(token, now=NOW)  # another server's secret
    head, payload, sig = token.split(".")
    other = TokenSigner(b"s" * 32).issue(SessionClaims("x", 8, "web", None, exp)).split(".")[1]
    with pytest.raises(InvalidToken):
        signer.verify(f"{head}.{other}.{sig}", now=NOW)  # someone else's payload, our signature
    with pytest.raises(InvalidToken):
        signer.verify(f"v2.{payload}.{sig}", now=NOW)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, now=datetime.fromtimestamp(exp + 1, UTC))
    assert signer.verify(token, now=datetime.fromtimestamp(exp + 1, UTC), grace=1)


def test_verified_tokens_are_remembered_but_expire_to_the_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = TokenSigner(b"s" * 32, cache_size=2)
    exp = int(NOW.timestamp()) + 60
    tokens = [signer.issue(_claims(exp + i)) for i in range(3)]
    assert signer.verify(tokens[0], now=NOW) == _claims(exp)

    def no_signing(message: bytes) -> bytes:
        raise AssertionError("a remembered token is not checked again")

    monkeypatch.setattr(signer, "_sign", no_signing)
    at_expiry = datetime.fromtimestamp(exp, UTC)
    assert signer.verify(tokens[0], now=at_expiry) == _claims(exp)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(tokens[0], now=datetime.fromtimestamp(exp + 1, UTC))
    assert signer.verify(tokens[0], now=datetime.fromtimestamp(exp + 1, UTC), grace=1)
    monkeypatch.undo()

    head, payload, sig = tokens[0].split(".")
    for forged in (f"{head}.{payload}.{sig[:-2]}AA", f"{head}.{payload}x.{sig}", "v1.a.b"):
        with pytest.raises(InvalidToken):
            signer.verify(forged, now=NOW)
    with pytest.raises(InvalidToken, match="expired"):  # correctly signed, already expired
        signer.verify(tokens[2], now=datetime.fromtimestamp(exp + 3, UTC))
    signer.verify(tokens[1], now=NOW)
    # only correctly signed tokens were kept, and at most two: the oldest went first
    assert list(signer._verified) == [tokens[2], tokens[1]]


def test_secret_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_secret(settings)
    path = tmp_path / "data" / "session-secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 32 and load_secret(settings) == first
    configured = Settings(data_dir=tmp_path / "x", session_secret=SecretStr("k" * 20))
    assert load_secret(configured) == b"k" * 20
    assert not (tmp_path / "x" / "session-secret").exists()
    with pytest.raises(ValueError, match="16"):
        load_secret(Settings(data_dir=tmp_path, session_secret=SecretStr("short")))


def test_inflation_is_bounded_and_never_whole_in_memory() -> None:
    bomb = gzip_bomb(200 * 1024 * 1024, fill=b"\x00", prefix=b"")
    inflater = GzipInflater(limit=1 << 40)
    tracemalloc.start()
    try:
        biggest = 0
        for i in range(0, len(bomb), 65536):
            for out in inflater.feed(bomb[i : i + 65536]):
                biggest = max(biggest, len(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    inflater.finish()
    assert inflater.inflated == 200 * 1024 * 1024
    assert biggest <= INFLATE_STEP
    assert peak < 4 * 1024 * 1024  # 200 MiB went through, a few chunks at a time

    limited = GzipInflater(limit=10 * 1024 * 1024)
    with pytest.raises(HTTPProblem) as err:
        for _out in limited.feed(bomb):
            pass
    assert err.value.status == 413
    assert limited.inflated <= 10 * 1024 * 1024 + INFLATE_STEP


def test_gzip_members_and_truncation() -> None:
    two = gzip.compress(b"[{},") + gzip.compress(b"{}]")
    inflater = GzipInflater(limit=1000)
    assert b"".join(inflater.feed(two)) == b"[{},{}]"
    inflater.finish()
    cut = GzipInflater(limit=1000)
    list(cut.feed(gzip.compress(b"[{}]" * 50)[:-5]))
    with pytest.raises(HTTPProblem):
        cut.finish()
    trailing = GzipInflater(limit=1000)
    list(trailing.feed(gzip.compress(b"[]") + b"\x1f"))
    with pytest.raises(HTTPProblem):
        trailing.finish()


@pytest.mark.parametrize("memory_limit", [1 << 20, 0])  # checked whole / incrementally
def test_events_check_in_pieces(memory_limit: int) -> None:
    raw = json.dumps(events(0, 40)).encode()
    check = EventsArrayCheck(memory_limit)
    for i in range(0, len(raw), 7):
        check.feed(raw[i : i + 7])
    check.finish()
    assert check.count == 40
    for bad in (
        b'{"a": 1}',
        b"[1]",
        b'[{"a": 1}, null]',
        b'[{"a": NaN}]',
        b'[{"a": 1}] [{}]',
        b'[{"a": 1}',
        b"\xff[{}]",
    ):
        check = EventsArrayCheck(memory_limit)
        with pytest.raises(HTTPProblem) as err:
            for i in range(0, len(bad), 3):
                check.feed(bad[i : i + 3])
            check.finish()
        assert err.value.status == 400, bad


def test_rate_limiter_bucket() -> None:
    limiter = RateLimiter("sessions", 60)
    for _ in range(60):
        limiter.take(1, 1, NOW)
    with pytest.raises(HTTPProblem) as err:
        limiter.take(1, 1, NOW)
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "1"
    limiter.take(2, 1, NOW)  # another project has its own bucket
    RateLimiter("bytes", 0).take(1, 10**12, NOW)  # 0: no limit


async def test_events_stream_joins_batches_split_anywhere(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    docs = [
        b'[{"s": "a ] , [ b"}, {"n": [1, 2]}]',
        b"  [ ]  ",
        b'\n[\n {"s": "   "}  ,{"t": "]"}\n]\n\n',
        gzip.compress(b'[{"z": 1}]'),
    ]
    batches = []
    for i, doc in enumerate(docs):
        key = f"s/{i}"
        await blobs.put_bytes(key, doc)
        batches.append(Batch(i + 1, False, NOW, len(doc), "gzip" if i == 3 else "", key))

    class OneByte:
        """A store that yields every blob one byte at a time."""

        async def _gen(self, key: str) -> AsyncIterator[bytes]:
            data = await blobs.get_bytes(key)
            for b in range(len(data)):
                yield data[b : b + 1]

        def stream(self, key: str) -> AsyncIterator[bytes]:
            return self._gen(key)

    for store in (blobs, OneByte()):

        def read(batch: Batch, store: LocalBlobStore | OneByte = store) -> AsyncIterator[bytes]:
            assert batch.blob_key is not None
            return store.stream(batch.blob_key)

        out = b"".join([c async for c in events_stream(read, batches)])
        assert json.loads(out) == [
            {"s": "a ] , [ b"},
            {"n": [1, 2]},
            {"s": "   "},
            {"t": "]"},
            {"z": 1},
        ]
