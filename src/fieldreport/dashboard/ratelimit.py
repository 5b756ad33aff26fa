"""Login rate limiting: a sliding window of failed attempts per email and per client IP.

The decision is a pure function of the failure counts and the clock, so it is tested
without sleeping; the counts live in the database (``login_failures``), shared by every
server process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# One address may fail this many times more than one account: an office behind one NAT.
IP_FACTOR = 4


@dataclass(frozen=True)
class LoginLimit:
    max_failures: int
    window: timedelta


def failure_keys(email: str, ip: str) -> list[str]:
    return [f"email:{email.strip().lower()}", f"ip:{ip}"]


def retry_after(
    failures: dict[str, tuple[int, datetime | None]], limit: LoginLimit, now: datetime
) -> int | None:
    """Seconds until a login may be tried again, or None if it may be tried now.

    ``failures`` maps each key to (failures in the window, time of the oldest of them)."""
    wait = 0.0
    for key, (count, oldest) in failures.items():
        allowed = limit.max_failures * (IP_FACTOR if key.startswith("ip:") else 1)
        if count >= allowed and oldest is not None:
            wait = max(wait, (oldest + limit.window - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None
