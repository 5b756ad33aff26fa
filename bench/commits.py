"""Requests per commit and flushes per request, from the servers' own ``/metrics``.

fieldreport counts its batch writer's transactions and jobs (one job per request that waited
for a commit) and its blob store's group flushes (``syncfs``) and the requests that waited
for them (``fieldreport_db_write_*`` and ``fieldreport_blob_*``, per process). Scraped
before and after a load, their differences tell how many requests shared a commit and how
many flushes a report cost: the numbers behind a throughput that flips between modes as
more or fewer requests share each commit. Builds without these counters give ``None``.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: counter family (without ``_total``) -> the key it is kept under
COUNTERS = {
    "fieldreport_db_write_transactions": "transactions",
    "fieldreport_db_write_jobs": "jobs",
    "fieldreport_blob_flushes": "flushes",
    "fieldreport_blob_flush_waits": "flush_waits",
}


def scrape(urls: list[str]) -> dict[str, float] | None:
    """The write-path counters summed over the server processes at ``urls`` (each one's
    ``/metrics``), or ``None`` when a process does not expose them (an older build)."""
    total = dict.fromkeys(COUNTERS.values(), 0.0)
    for url in urls:
        resp = httpx.get(url, timeout=10)
        resp.raise_for_status()
        found = 0
        for family in text_string_to_metric_families(resp.text):
            key = COUNTERS.get(family.name)
            if key is not None:
                total[key] += sum(s.value for s in family.samples if s.name.endswith("_total"))
                found += 1
        if found < len(COUNTERS):
            return None
    return total


def moved(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """What a load moved: the counters' differences and, where they can be divided,
    ``per_commit`` (jobs / transactions) and ``flushes_per_request`` (flushes / requests
    that waited for one). Empty when either scrape found no counters."""
    if before is None or after is None:
        return {}
    out = {key: after[key] - before[key] for key in COUNTERS.values()}
    if out["transactions"]:
        out["per_commit"] = round(out["jobs"] / out["transactions"], 2)
    if out["flush_waits"]:
        out["flushes_per_request"] = round(out["flushes"] / out["flush_waits"], 3)
    return out


def number(value: float | None, digits: int) -> str:
    """``value`` rounded, or ``n/a`` when it was not measured."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def describe(counted: dict[str, float]) -> str:
    """One line for a terminal: ``requests/commit 12.3 (4000 in 325), flushes/request ...``."""
    if not counted:
        return "commits: not counted (no write-path counters)"
    line = "requests/commit " + (
        f"{counted['per_commit']:.1f} ({counted['jobs']:.0f} in {counted['transactions']:.0f})"
        if "per_commit" in counted
        else "n/a"
    )
    if "flushes_per_request" in counted:
        line += (
            f", flushes/request {counted['flushes_per_request']:.3f}"
            f" ({counted['flushes']:.0f} for {counted['flush_waits']:.0f})"
        )
    return line
