"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)
and the signed, expiring links to a report's files that JSON pushes carry."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from urllib.parse import urlencode

SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)


def check_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret; ValueError (without the secret) when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret looks like whsec_<base64>")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret after whsec_ is not valid base64") from None
    if len(key) < 16:
        raise ValueError("the signing secret is too short (at least 16 bytes, 24+ recommended)")
    return key


def webhook_headers(secret: str | None, msg_id: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp}
    if secret:
        key = check_secret(secret)
        signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
    return headers


def verify_webhook(
    secret: str, headers: dict[str, str], body: bytes, *, tolerance: float = 300
) -> bool:
    """Check a Standard Webhooks signature (used by our reference receiver)."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures):
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = webhook_headers(secret, msg_id, body, int(timestamp))["webhook-signature"]
    return any(
        hmac.compare_digest(expected, candidate.strip())
        for candidate in signatures.split(" ")
        if candidate.startswith("v1,")
    )


def message_id(report_id: str) -> str:
    """Stable across retries and backups, so receivers can de-duplicate."""
    return "msg_" + report_id.replace("-", "")


# --- signed links -------------------------------------------------------------------------

LINK_PATH = "/api/v1/delivery-files"


def _link_sig(key: str, report_id: str, name: str, expires: int) -> str:
    msg = f"{report_id}/{name}/{expires}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()[:40]


def signed_link(base_url: str, key: str, report_id: str, name: str, expires: int) -> str:
    """``name`` is ``screenshot`` or ``attachment-N``."""
    query = urlencode({"expires": expires, "sig": _link_sig(key, report_id, name, expires)})
    return f"{base_url}{LINK_PATH}/{report_id}/{name}?{query}"


def link_valid(key: str, report_id: str, name: str, expires: str, sig: str, now: float) -> bool:
    # Only ASCII is comparable (compare_digest raises on other str) and int() accepts
    # non-ASCII digits such as "³": both were 500s (schemathesis).
    if not (expires.isascii() and expires.isdigit() and sig.isascii()) or int(expires) < now:
        return False
    expected = _link_sig(key, report_id, name, int(expires))
    return hmac.compare_digest(expected.encode(), sig.encode())
