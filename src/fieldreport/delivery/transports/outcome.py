"""Building SendResults for the email, FTP and SFTP transports: timed, excerpted, scrubbed."""

from __future__ import annotations

import time

from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.transports.urls import scrub

EXCERPT_CHARS = 1024


class Attempt:
    """One send: measures its duration, remembers its phase and the secrets to scrub."""

    def __init__(self, secrets: list[str], phase: str | None = "connecting") -> None:
        self._started = time.monotonic()
        self._secrets = secrets
        self.phase = phase

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def clean(self, text: str) -> str:
        return scrub(text, self._secrets)[:EXCERPT_CHARS]

    def ok(self, *, status_code: int | None = None, response: str = "") -> SendResult:
        return SendResult(
            ok=True,
            duration_ms=self.elapsed_ms(),
            status_code=status_code,
            response_excerpt=self.clean(response),
        )

    def failed(
        self,
        error: str,
        *,
        permanent: bool = False,
        status_code: int | None = None,
        response: str = "",
    ) -> SendResult:
        return SendResult(
            ok=False,
            duration_ms=self.elapsed_ms(),
            status_code=status_code,
            response_excerpt=self.clean(response),
            error=self.clean(f"{error} (while {self.phase})" if self.phase else error),
            permanent=permanent,
        )

    def timed_out(self, timeout: float) -> SendResult:
        return self.failed(f"timed out after {timeout:g}s")


def describe(exc: BaseException) -> str:
    """A one-line description of an exception for people (type and message)."""
    message = str(exc).strip().replace("\r", " ").replace("\n", " ")
    name = type(exc).__name__
    return f"{name}: {message}" if message else name
