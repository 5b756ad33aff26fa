"""A bounded load generator for the reliability tests (loopback only).

It sends ``total`` reports with ``concurrency`` clients, each report marked with a unique
subject, and behaves like a well-written field client behind a load balancer: on 503 it
waits for ``Retry-After`` (capped, so tests stay fast) and sends the same report again;
when a server cannot be reached it tries the next one. Every answer is counted, and the
report ids of the 201s are kept so a test can check each accepted report afterwards.
Bounded three ways: ``total`` reports, ``attempts_per_report`` tries each, ``deadline``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support.images import png_bytes


@dataclass
class LoadResult:
    accepted: dict[str, str] = field(default_factory=dict)  # subject -> report id
    statuses: Counter[str] = field(default_factory=Counter)  # "201", "503", "connect-error"...
    retry_after_missing: int = 0  # 503s without Retry-After (must stay 0)
    given_up: list[str] = field(default_factory=list)  # subjects never accepted
    seconds: float = 0.0

    @property
    def server_errors(self) -> int:
        """5xx other than 503/507: bugs, never expected."""
        return sum(
            n for s, n in self.statuses.items() if s.startswith("5") and s not in ("503", "507")
        )

    def summary(self) -> dict[str, object]:
        return {
            "accepted": len(self.accepted),
            "statuses": dict(sorted(self.statuses.items())),
            "given_up": len(self.given_up),
            "seconds": round(self.seconds, 2),
        }


@dataclass
class LoadGenerator:
    targets: list[str]
    public_key: str
    total: int = 200
    concurrency: int = 8
    attempts_per_report: int = 200
    deadline: float = 60.0
    retry_cap: float = 0.2  # seconds; Retry-After is honoured up to this cap
    screenshot: bool = True
    run_id: str = "load"
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set at the first 201

    async def run(self) -> LoadResult:
        result = LoadResult()
        numbers = iter(range(self.total))
        rotation = itertools.cycle(range(len(self.targets)))
        shot = png_bytes(32, 24) if self.screenshot else None
        start = time.monotonic()
        limits = httpx.Limits(max_connections=self.concurrency * len(self.targets))
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:

            async def send(n: int) -> None:
                subject = f"{self.run_id} #{n}"
                target = next(rotation)
                for _ in range(self.attempts_per_report):
                    if time.monotonic() - start > self.deadline:
                        break
                    url = self.targets[target] + "/api/v1/reports"
                    try:
                        resp = await client.post(
                            url,
                            headers={"X-Fieldreport-Key": self.public_key},
                            data={"subject": subject, "sendercomment": "load test"},
                            files={"file": ("s.png", shot, "image/png")} if shot else None,
                        )
                    except httpx.TransportError as exc:
                        kind = (
                            "connect-error" if isinstance(exc, httpx.ConnectError) else "io-error"
                        )
                        result.statuses[kind] += 1
                        target = (target + 1) % len(self.targets)  # the balancer fails over
                        await asyncio.sleep(0.05)
                        continue
                    result.statuses[str(resp.status_code)] += 1
                    if resp.status_code == 201:
                        result.accepted[subject] = resp.json()["reportid"]
                        self.started.set()
                        return
                    if resp.status_code in (503, 507):
                        retry_after = resp.headers.get("retry-after")
                        if retry_after is None:
                            result.retry_after_missing += 1
                        await asyncio.sleep(min(float(retry_after or 1), self.retry_cap))
                        continue
                    break  # any other answer is final: a bug the test reports
                result.given_up.append(subject)

            async def client_loop() -> None:
                for n in numbers:
                    await send(n)

            await asyncio.gather(*(client_loop() for _ in range(self.concurrency)))
        result.seconds = time.monotonic() - start
        return result
