"""Session tokens: HMAC-signed, self-contained, verified without a database read.

A token is ``v1.<payload>.<signature>``: the payload is compact JSON (base64url) naming the
session, its project, its platform, the browser origin it was started from and its expiry;
the signature is HMAC-SHA256 over ``v1.<payload>`` with the server's session secret.

The secret comes from the ``session_secret`` setting or, by default, from
``DATA_DIR/session-secret``, created (mode 0600) the first time it is needed. Several
servers behind one load balancer must share it: set ``FIELDREPORT_SESSION_SECRET``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fieldreport.settings import Settings

VERSION = "v1"
SECRET_FILE = "session-secret"  # noqa: S105 (a file name)


class InvalidToken(ValueError):
    """The token is malformed, forged, or expired (the message says which)."""


@dataclass(frozen=True)
class SessionClaims:
    session_id: str
    project_id: int
    platform: str
    origin: str | None
    expires_at: int  # unix seconds

    def expired(self, now: datetime, grace: float = 0.0) -> bool:
        return now.timestamp() > self.expires_at + grace

    @property
    def expires_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(settings: Settings) -> bytes:
    """The signing secret: from settings, else from (or newly into) the data directory."""
    if settings.session_secret is not None:
        configured = settings.session_secret.get_secret_value()
        if len(configured) < 16:
            raise ValueError("FIELDREPORT_SESSION_SECRET must be at least 16 characters")
        return configured.encode("utf-8")
    path: Path = settings.data_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value


class TokenSigner:
    """Issues and verifies tokens; remembers the claims of tokens it has verified.

    A session sends every batch with the same token, so the claims of up to ``cache_size``
    tokens whose signature checked out are kept (a signature never stops being valid for the
    same secret): a known token is not decoded nor signed again. The expiry is checked on
    every call. Only correctly signed tokens are kept, so forged ones cannot fill the cache.
    """

    def __init__(self, secret: bytes, cache_size: int = 4096) -> None:
        if not secret:
            raise ValueError("empty session secret")
        self._secret = secret
        self._cache_size = cache_size
        self._verified: dict[str, SessionClaims] = {}

    def _sign(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def issue(self, claims: SessionClaims) -> str:
        payload = {
            "sid": claims.session_id,
            "pid": claims.project_id,
            "plt": claims.platform,
            "org": claims.origin,
            "exp": claims.expires_at,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        signed = f"{VERSION}.{body}"
        return f"{signed}.{_b64(self._sign(signed.encode('ascii')))}"

    def verify(self, token: str, *, now: datetime, grace: float = 0.0) -> SessionClaims:
        """Check the signature and expiry (``grace`` seconds past expiry are tolerated)."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check_signed(token)
            if len(self._verified) >= self._cache_size:  # forget the oldest
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        if claims.expired(now, grace):
            raise InvalidToken("session token expired: start a new session")
        return claims

    def _check_signed(self, token: str) -> SessionClaims:
        """The claims of a correctly signed, well-formed token (expiry not checked)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise InvalidToken("malformed session token")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
        try:
            signature = _unb64(parts[2])
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("malformed session token") from exc
        if not hmac.compare_digest(signature, self._sign(signed)):
            raise InvalidToken("invalid session token")
        try:
            data = json.loads(_unb64(parts[1]))
            return SessionClaims(
                session_id=str(data["sid"]),
                project_id=int(data["pid"]),
                platform=str(data["plt"]),
                origin=data["org"] if isinstance(data["org"], str) else None,
                expires_at=int(data["exp"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise InvalidToken("malformed session token") from exc
