"""How close an ingest endpoint could get to the ceiling at best: ceiling, floor, fieldreport.

    python -m bench.floor [--rounds 3] [--seconds 3] [--connections 64]
                          [--endpoint reports,sessions]

For reports and session batches, three servers take turns under the same wrk load (SQLite,
one process each, loopback): the ceiling (``bench/apps/bare.py``: read the body, answer),
the floor (``bench/apps/floor.py``: the same, plus only what cannot be skipped before a 2xx)
and ``fieldreport serve``. A row per floor:

- reports: the screenshot's SHA-256, PNG check, file write and group ``syncfs``; the durable
  write alone (file and ``syncfs``); the screenshot appended to one log file made durable by
  a group ``fdatasync`` (no file per screenshot);
- sessions: the JSON check alone; the check and the batch appended to a log file with a
  group ``fdatasync``; the check and the batch's row committed by fieldreport's batch writer.

``floor / ceiling`` is the most a report or batch endpoint doing that work can reach against
the ceiling on this machine (the appended rows: any endpoint whose 2xx means the bytes are
durable); ``fieldreport / floor`` is how much of that fieldreport reaches. The servers' CPU
per request is printed beside the rates (as in the ingest table).
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import servers
from bench.measure import Target, compare

#: fieldreport's endpoint name -> (row name, the floor app's path) for each floor of it
FLOORS = {
    "reports": [
        ("reports", "/reports"),
        ("reports, durable write only", "/reports/write"),
        ("reports, appended to a log", "/reports/appended"),
    ],
    "sessions": [
        ("sessions", "/sessions"),
        ("sessions, checked, appended to a log", "/sessions/appended"),
        ("sessions, checked and stored", "/sessions/stored"),
    ],
}


def run(
    rounds: int, seconds: float, connections: int, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """One row per floor (of the endpoints in ``only``; None: all): the three servers'
    summaries and the ratios."""
    from bench.suite import endpoints

    rows: list[dict[str, Any]] = []
    with (
        servers.scratch("floor") as work,
        servers.bare(1, work) as ceiling,
        servers.floor(work) as floor,
        servers.fieldreport(1, work, **servers.NO_SESSION_RATE_LIMITS) as fr,
    ):
        chosen = [e for e in endpoints(fr) if only is None or e.name in only]
        for ep, (name, path) in ((e, f) for e in chosen for f in FLOORS.get(e.name, [])):
            targets = [
                Target("ceiling", ceiling.urls("/ingest"), ep.body, ep.headers, connections,
                       ceiling.pids),
                Target("floor", floor.urls(path), ep.body, ep.headers, connections, floor.pids),
                Target("fieldreport", fr.urls(ep.path), ep.body, ep.headers, connections,
                       fr.pids),
            ]  # fmt: skip
            c, f, ours = compare(targets, rounds=rounds, seconds=seconds)
            rows.append(
                {
                    "endpoint": name,
                    "ceiling": c.summary(),
                    "floor": f.summary(),
                    "fieldreport": ours.summary(),
                    "floor_ratio": round(f.rps / c.rps, 3) if c.rps else 0.0,
                    "ratio": round(ours.rps / c.rps, 3) if c.rps else 0.0,
                    "of_floor": round(ours.rps / f.rps, 3) if f.rps else 0.0,
                }
            )
    return rows


def describe(row: dict[str, Any]) -> str:
    c, f, ours = row["ceiling"], row["floor"], row["fieldreport"]
    return (
        f"{row['endpoint']:28} ceiling {c['rps']:6.0f}/s {c['cpu_us']:6.0f} µs   "
        f"floor {f['rps']:6.0f}/s {f['cpu_us']:6.0f} µs ({row['floor_ratio']:.2f} of ceiling)   "
        f"fieldreport {ours['rps']:6.0f}/s {ours['cpu_us']:6.0f} µs ({row['ratio']:.2f} of "
        f"ceiling, {row['of_floor']:.2f} of floor)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--endpoint", default=",".join(FLOORS), help="e.g. reports,sessions")
    args = parser.parse_args()
    only = set(args.endpoint.split(","))
    for row in run(args.rounds, args.seconds, args.connections, only):
        print(describe(row))


if __name__ == "__main__":
    main()
