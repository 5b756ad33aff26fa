"""The outcome of one send, shared by every transport. Transports never raise for a
failed delivery: they describe it, and the pure retry policy decides what happens next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass  # read-only; not frozen: ~600 instructions a field less for each send
class SendResult:
    ok: bool
    duration_ms: int
    status_code: int | None = None  # HTTP status, or the SMTP/FTP reply code when there is one
    response_excerpt: str = ""  # the first ~1 KiB of the answer, secrets redacted
    error: str | None = None  # what went wrong, for people
    retry_after: float | None = None  # seconds, from Retry-After on 429/503
    permanent: bool = False  # retrying cannot help (e.g. 410 Gone, auth refused, bad address)
