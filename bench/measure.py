"""Side-by-side throughput measurement: targets take turns, medians of repeated short runs.

On a small, shared machine the absolute numbers drift by tens of percent from minute to
minute; a ratio between two servers measured in alternation (A, B, A, B, ...) within the same
minute is far steadier than either number alone.
"""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import commits, wrk

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (all their threads), from /proc."""
    return sum(_stat_cpu(f"/proc/{pid}/stat") for pid in pids) / _TICK


def loop_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes' main threads only: the event loop, where
    every request's Python code runs. The other threads (the SQLite writer, file writes,
    hashing) can use the machine's other core; the loop thread cannot, so its CPU per
    request bounds a server's rate the way a single-threaded ceiling's does."""
    return sum(_stat_cpu(f"/proc/{pid}/task/{pid}/stat") for pid in pids) / _TICK


def _stat_cpu(path: str) -> int:
    with open(path) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Target:
    label: str
    urls: list[str]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 64
    #: server processes whose CPU time is read around each run (CPU per accepted request)
    pids: list[int] = field(default_factory=list)
    #: their ``/metrics`` (fieldreport's): write-path counters scraped around each run
    #: (requests per commit, flushes per request; see bench/commits.py)
    metrics_urls: list[str] = field(default_factory=list)


@dataclass
class Series:
    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r["rps"] for r in self.runs) if self.runs else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(r["p50_ms"] for r in self.runs) if self.runs else 0.0

    @property
    def p99_ms(self) -> float:
        return statistics.median(r["p99_ms"] for r in self.runs) if self.runs else 0.0

    @property
    def cpu_us(self) -> float:
        """Median server CPU µs per accepted request (0 when not measured)."""
        values = [r["cpu_us"] for r in self.runs if r.get("cpu_us")]
        return statistics.median(values) if values else 0.0

    @property
    def loop_us(self) -> float:
        """Median CPU µs per accepted request of the servers' main (event loop) threads."""
        values = [r["loop_us"] for r in self.runs if r.get("loop_us")]
        return statistics.median(values) if values else 0.0

    def _median_of(self, key: str) -> float | None:
        values = [r["commits"][key] for r in self.runs if key in r.get("commits", {})]
        return statistics.median(values) if values else None

    @property
    def per_commit(self) -> float | None:
        """Median requests (writer jobs) per committed transaction, when counted."""
        return self._median_of("per_commit")

    @property
    def flushes_per_request(self) -> float | None:
        """Median blob flushes (syncfs) per request that waited for one, when counted."""
        return self._median_of("flushes_per_request")

    @property
    def errors(self) -> int:
        return int(sum(r["errors"] + r.get("socket_errors", 0) for r in self.runs))

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "label": self.label,
            "rps": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "cpu_us": round(self.cpu_us, 1),
            "loop_us": round(self.loop_us, 1),
            "runs": [r["rps"] for r in self.runs],
        }
        counted = [r["commits"] for r in self.runs if r.get("commits")]
        if counted:  # only a target with metrics_urls, on a build that counts
            out["per_commit"] = self.per_commit
            out["flushes_per_request"] = self.flushes_per_request
            keys = commits.COUNTERS.values()
            out["commit_counts"] = {k: sum(c[k] for c in counted) for k in keys}
        return out


def load(target: Target, seconds: float) -> dict[str, Any]:
    """One wrk run; with several URLs (one per server process) one wrk per URL, concurrently,
    the connections split between them; requests/s add up."""
    per = max(1, target.connections // len(target.urls))
    # scraped outside the CPU readings: a scrape's own work is not a request's
    counters = commits.scrape(target.metrics_urls) if target.metrics_urls else None
    cpu_before = cpu_seconds(target.pids) if target.pids else 0.0
    loop_before = loop_cpu_seconds(target.pids) if target.pids else 0.0
    with ThreadPoolExecutor(len(target.urls)) as pool:
        results = list(
            pool.map(
                lambda url: wrk.run(
                    url, seconds=seconds, body=target.body, headers=target.headers, connections=per
                ),
                target.urls,
            )
        )
    ok = sum(r["requests"] - r["errors"] for r in results)
    cpu = cpu_seconds(target.pids) - cpu_before if target.pids else 0.0
    loop = loop_cpu_seconds(target.pids) - loop_before if target.pids else 0.0
    counted = commits.moved(counters, commits.scrape(target.metrics_urls)) if counters else {}
    return {
        **({"commits": counted} if counted else {}),
        "cpu_us": round(cpu / ok * 1e6, 1) if cpu and ok else 0.0,
        "loop_us": round(loop / ok * 1e6, 1) if loop and ok else 0.0,
        "rps": sum(r["rps"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
    }


def compare(
    targets: list[Target], *, rounds: int, seconds: float, warmup: float = 1
) -> list[Series]:
    """Each round runs every target once, in turn; returns one series per target."""
    for t in targets:
        load(t, warmup)
    series = [Series(t.label) for t in targets]
    for _ in range(rounds):
        for t, s in zip(targets, series, strict=True):
            s.runs.append(load(t, seconds))
    return series


def cluster_cpu_seconds(data_dir: Path) -> float:
    """User + system CPU time of a PostgreSQL cluster: its postmaster, every live child
    (backends, walwriter, checkpointer, ...) and, through the postmaster's cumulative
    children's times, every child that exited and was reaped. The postmaster's pid is the
    first line of ``postmaster.pid`` in its data directory (readable only by its owner)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / _TICK
