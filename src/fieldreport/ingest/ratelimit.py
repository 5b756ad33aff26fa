"""Per-project rate limits: token buckets in this process's memory, driven by a clock.

Each bucket holds up to ``per_minute`` tokens and refills at ``per_minute / 60`` a second, so a
project may burst one minute's worth and then sustain the rate. Limits are per server process
(several processes behind a load balancer each allow the full rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from fieldreport.ingest.errors import HTTPProblem


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, name: str, per_minute: int) -> None:
        self.name = name
        self.per_minute = per_minute
        self._buckets: dict[int, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _bucket(self, key: int, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        elapsed = max(0.0, now - bucket.updated)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + elapsed * rate)
        bucket.updated = now
        return bucket

    def take(self, key: int, amount: float, now: datetime) -> None:
        """Take ``amount`` from ``key``'s bucket or raise 429 with ``Retry-After``."""
        if not self.enabled:
            return
        bucket = self._bucket(key, now.timestamp())
        # A single request larger than the whole bucket may pass when the bucket is full.
        needed = min(amount, float(self.per_minute))
        if bucket.tokens >= needed:
            bucket.tokens -= amount
            return
        wait = (needed - bucket.tokens) / (self.per_minute / 60.0)
        raise HTTPProblem(
            429,
            f"rate limit exceeded: this project may send {self.per_minute} {self.name} per minute",
            code="rate_limited",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    def charge(self, key: int, amount: float, now: datetime) -> None:
        """Record usage already admitted (may drive the bucket negative)."""
        if self.enabled:
            self._bucket(key, now.timestamp()).tokens -= amount
