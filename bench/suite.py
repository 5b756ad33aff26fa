"""The whole benchmark: ``bench/run`` installs what it needs and runs this module.

    python -m bench.suite [--quick] [--only ingest,peer,...] [--out BENCHMARKS.md]

Measures fieldreport side by side with its ceilings and a peer in one run, writes the raw
results to ``.bench/results.json`` and renders ``BENCHMARKS.md`` plus ``docs/bench/*.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import commits, memory, payloads, peer, servers, util
from bench.measure import Target, compare

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".bench" / "results.json"
RUN_ID = uuid.uuid4().hex


@dataclass
class Plan:
    quick: bool
    rounds: int
    seconds: float
    connections: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, rounds=1, seconds=2, connections=64)
        return cls(quick=False, rounds=3, seconds=3, connections=64)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- ingest -----------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    unit_bytes: int


def has_module(relative: str) -> bool:
    return (ROOT / "src" / "fieldreport" / relative).exists()


def start_session(group: servers.Fieldreport, platform: str = "web") -> tuple[str, str]:
    """A recording session on the first server: ``(token, session id)``."""
    resp = httpx.post(
        group.urls(f"/v1/{platform}/start")[0],
        json={"projectKey": group.public_key, "trackerVersion": "bench/1"},
        timeout=10,
    )
    resp.raise_for_status()
    body = resp.json()
    return str(body["token"]), str(body["sessionID"])


def session_batch(size: int = 20_000) -> bytes:
    """A JSON array of rrweb-like events of at most ``size`` bytes (the sessions bench's)."""
    from bench.sessions_append import events_batch

    return events_batch(size)


def endpoints(group: servers.Fieldreport) -> list[Endpoint]:
    """The ingest endpoints this checkout serves, with their request bodies."""
    shot = payloads.screenshot_png()
    report_body, report_type = payloads.report_multipart(shot)
    found = [
        Endpoint(
            "reports",
            "/api/v1/reports",
            report_body,
            {"Content-Type": report_type, "X-Fieldreport-Key": group.public_key},
            len(report_body),
        )
    ]
    sessions = has_module("ingest/sessions.py")
    token, recording = start_session(group) if sessions else ("", str(uuid.uuid4()))
    if has_module("ingest/fullstack.py"):
        event = payloads.fullstack_event(recording)
        found.append(
            Endpoint(
                "events",
                "/api/fullstack/v1/send",
                event,
                {"Content-Type": "application/json", "Authorization": f"Bearer {group.secret_key}"},
                len(event),
            )
        )
    if sessions:
        batch = session_batch()
        found.append(
            Endpoint(
                "sessions",
                "/v1/web/append",
                batch,
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                len(batch),
            )
        )
    return found


def ingest_case(
    plan: Plan, backend: str, processes: int, only: set[str] | None = None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tmpfs = Path("/dev/shm") if backend == "sqlite-tmpfs" else None
    with servers.scratch(f"ingest-{backend}", tmpfs) as work:
        pg = servers.postgres_database() if backend == "postgresql" else None
        db_url = pg.__enter__() if pg else None
        try:
            with (
                servers.bare(processes, work) as ceiling,
                servers.fieldreport(
                    processes, work, db_url, **servers.NO_SESSION_RATE_LIMITS
                ) as fr,
            ):
                for ep in endpoints(fr):
                    if only and ep.name not in only:
                        continue
                    log(f"ingest {ep.name} on {backend}, {processes} process(es)")
                    c, f = compare(
                        [
                            Target("ceiling", ceiling.urls("/ingest"), ep.body, ep.headers,
                                   plan.connections, ceiling.pids),
                            Target("fieldreport", fr.urls(ep.path), ep.body, ep.headers,
                                   plan.connections, fr.pids, fr.urls("/metrics")),
                        ],
                        rounds=plan.rounds,
                        seconds=plan.seconds,
                    )  # fmt: skip
                    row = {
                        "endpoint": ep.name,
                        "backend": backend,
                        "processes": processes,
                        "body_bytes": ep.unit_bytes,
                        "ceiling": c.summary(),
                        "fieldreport": f.summary(),
                        "ratio": round(f.rps / c.rps, 3) if c.rps else 0.0,
                        "cpu_ratio": round(c.cpu_us / f.cpu_us, 3) if f.cpu_us else 0.0,
                        "fieldreport_rss_mib": round(fr.rss_bytes() / 2**20, 1),
                    }
                    log(
                        f"  ceiling {c.rps:.0f}/s  fieldreport {f.rps:.0f}/s"
                        f"  ratio {row['ratio']:.2f}"
                        f"  (errors {f.errors})"
                        f"  requests/commit {commits.number(f.per_commit, 1)}"
                        f"  flushes/request {commits.number(f.flushes_per_request, 3)}"
                    )
                    out.append(row)
        finally:
            if pg:
                pg.__exit__(None, None, None)
    return out


def run_ingest(plan: Plan, results: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    backends = ["sqlite"] + (["postgresql"] if servers.postgres_available() else [])
    for backend in backends:
        rows += ingest_case(plan, backend, 1)
    results["ingest"] = rows
    results["ingest_run"] = RUN_ID


def run_diagnostics(plan: Plan, results: dict[str, Any]) -> None:
    """Not targets: what the disk allows, and ingest with the data on tmpfs (fsync is free
    there), to tell the cost of durable writes from the cost of the request path."""
    from bench.diskceiling import durable_writes

    out: dict[str, Any] = {"disk": {}}
    for size in (20_000, 200_000):
        out["disk"][str(size)] = round(durable_writes(size, seconds=3, base=Path("/tmp")))
    log(f"  disk: durable writes/s {out['disk']}")
    if (ROOT / "bench" / "apps" / "fullstack.py").exists():
        with (
            servers.scratch("app-bare") as work,
            servers.bare(1, work) as bare,
            servers.app_bare(work) as app,
        ):
            body = payloads.fullstack_event(str(uuid.uuid4()))
            b, a = compare(
                [
                    Target("bare", bare.urls("/ingest"), body, {}, plan.connections),
                    Target("app", app.urls("/bench/bare"), body, {}, plan.connections),
                ],
                rounds=plan.rounds,
                seconds=plan.seconds,
            )
        out["app_overhead"] = {"bare": b.summary(), "app": a.summary(),
                               "ratio": round(a.rps / b.rps, 3) if b.rps else 0.0}  # fmt: skip
        log(f"  bare endpoint alone {b.rps:.0f}/s, inside fieldreport's app {a.rps:.0f}/s")
    if Path("/dev/shm").is_dir():
        out["tmpfs"] = ingest_case(plan, "sqlite-tmpfs", 1, only={"reports", "sessions"})
    results["diagnostics"] = out


def run_floor(plan: Plan, results: dict[str, Any]) -> None:
    """Ceiling, floor (only the checks and the durable write that cannot be skipped) and
    fieldreport, taking turns (bench/floor.py)."""
    from bench import floor

    rows = floor.run(plan.rounds, plan.seconds, plan.connections)
    for row in rows:
        log("  " + floor.describe(row))
    results["floor"] = rows


def run_scale(plan: Plan, results: dict[str, Any]) -> None:
    # 1 process: the SQLite rows measured by the ingest section of this run, when there are any
    fresh = results.get("ingest_run") == RUN_ID
    rows = [r for r in results.get("ingest", []) if r["backend"] == "sqlite"] if fresh else []
    if not rows:
        rows = ingest_case(plan, "sqlite", 1)
    rows += ingest_case(plan, "sqlite", 2)
    results["scale"] = rows


# Earlier builds measured beside this one: where the optimisation work started (before the
# batch writer, the blob group flush and the lighter request paths) and where the previous
# rounds of it ended. Each runs from its own ``src/`` tree (git archive).
BASELINE_REVS: tuple[tuple[str, str], ...] = (
    ("75c5630", "start (session 1)"),
    ("b332136", "session 10"),
    ("eb13bce", "session 11"),
)
#: Rounds of the before/after comparison: more than the other sections' 3, because one build's
#: rounds of full-stack events spread by up to 45% on these machines (group commits of
#: different sizes), more than the builds differ.
FIX_ROUNDS = 5


def run_fix(plan: Plan, results: dict[str, Any]) -> None:
    """Before/after the fixes the profile pointed at: the baseline revisions' builds and this
    build, beside the ceiling, taking turns in the same run (1 process, SQLite)."""
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(servers.scratch("fix"))
        ceiling = stack.enter_context(servers.bare(1, work))
        olds = [
            stack.enter_context(
                servers.fieldreport(
                    1, work / rev, src=servers.revision_src(rev), **servers.NO_SESSION_RATE_LIMITS
                )
            )
            for rev, _ in BASELINE_REVS
        ]
        after = stack.enter_context(
            servers.fieldreport(1, work / "after", **servers.NO_SESSION_RATE_LIMITS)
        )
        for eps in zip(*(endpoints(g) for g in [*olds, after]), strict=True):
            name = eps[0].name
            log(f"fix: {name}, {', '.join(r for r, _ in BASELINE_REVS)} vs this build")
            targets = [
                Target("ceiling", ceiling.urls("/ingest"), eps[0].body, eps[0].headers,
                       plan.connections, ceiling.pids),
                *(
                    Target(rev, g.urls(ep.path), ep.body, ep.headers, plan.connections, g.pids)
                    for (rev, _), g, ep in zip(BASELINE_REVS, olds, eps, strict=False)
                ),
                Target("after", after.urls(eps[-1].path), eps[-1].body, eps[-1].headers,
                       plan.connections, after.pids),
            ]  # fmt: skip
            rounds = plan.rounds if plan.quick else FIX_ROUNDS
            c, *builds, a = compare(targets, rounds=rounds, seconds=plan.seconds)
            first = builds[0]
            rows.append(
                {
                    "endpoint": name,
                    "ceiling": c.summary(),
                    "builds": [
                        {
                            **b.summary(),
                            "rev": rev,
                            "label": label,
                            "ratio": round(b.rps / c.rps, 3) if c.rps else 0.0,
                        }
                        for (rev, label), b in zip(BASELINE_REVS, builds, strict=True)
                    ],
                    "after": a.summary(),
                    "ratio_after": round(a.rps / c.rps, 3) if c.rps else 0.0,
                    "speedup": round(a.rps / first.rps, 2) if first.rps else 0.0,
                }
            )
            log(
                f"  ceiling {c.rps:.0f}/s  "
                + "  ".join(
                    f"{t.label} {b.rps:.0f}/s" for t, b in zip(targets[1:], builds, strict=False)
                )
                + f"  after {a.rps:.0f}/s"
            )
    results["fix"] = {"baselines": [list(b) for b in BASELINE_REVS], "rows": rows}


def run_concurrency(plan: Plan, results: dict[str, Any]) -> None:
    """The same endpoints at 4, 16 and 64 connections (SQLite, 1 process, 1 round each)."""
    rows: list[dict[str, Any]] = []
    with (
        servers.scratch("concurrency") as work,
        servers.bare(1, work) as ceiling,
        servers.fieldreport(1, work, **servers.NO_SESSION_RATE_LIMITS) as fr,
    ):
        for ep in endpoints(fr):
            if ep.name == "events":
                continue
            for conns in (4, 16, 64):
                c, f = compare(
                    [
                        Target("ceiling", ceiling.urls("/ingest"), ep.body, ep.headers, conns),
                        Target("fieldreport", fr.urls(ep.path), ep.body, ep.headers, conns),
                    ],
                    rounds=1,
                    seconds=plan.seconds,
                )
                rows.append(
                    {"endpoint": ep.name, "connections": conns, "ceiling": c.summary(),
                     "fieldreport": f.summary(), "ratio": round(f.rps / c.rps, 3) if c.rps else 0.0}
                )  # fmt: skip
                log(f"  {ep.name} @{conns}: ceiling {c.rps:.0f}/s fieldreport {f.rps:.0f}/s "
                    f"p50 {f.p50_ms:.0f} ms")  # fmt: skip
    results["concurrency"] = rows


def run_peer(plan: Plan, results: dict[str, Any]) -> None:
    if not peer.installed():
        results["peer"] = {"skipped": f"Bugsink is not installed in {peer.VENV} (run bench/run)"}
        return
    with (
        servers.scratch("peer") as work,
        servers.fieldreport(1, work, **servers.NO_SESSION_RATE_LIMITS) as fr,
    ):
        ours = next((e for e in endpoints(fr) if e.name == "events"), None)
        if ours is None:
            results["peer"] = {"skipped": "this checkout has no full-stack events endpoint"}
            return
        log("starting Bugsink (migrations take a few seconds)")
        with peer.running(work / "bugsink") as bs:
            log(f"peer: Bugsink {peer.version()} vs fieldreport full-stack events")
            b, f = compare(
                [
                    Target("bugsink", [bs.store_url], payloads.peer_event(), bs.headers,
                           plan.connections),
                    Target("fieldreport", fr.urls(ours.path), ours.body, ours.headers,
                           plan.connections),
                ],
                rounds=plan.rounds,
                seconds=plan.seconds,
            )  # fmt: skip
            first = bs.digested()
            wait = 5 if plan.quick else 10
            time.sleep(wait)
            digest_rate = (bs.digested() - first) / wait
        results["peer"] = {
            "name": "Bugsink",
            "version": peer.version(),
            "workers": bs.workers,
            "bugsink": b.summary(),
            "fieldreport": f.summary(),
            "ratio": round(f.rps / b.rps, 1) if b.rps else 0.0,
            "bugsink_digest_per_s": round(digest_rate, 1),
            "event_bytes": len(ours.body),
        }
        log(f"  Bugsink {b.rps:.0f}/s (digests {digest_rate:.0f}/s)  fieldreport {f.rps:.0f}/s")


def run_memory(plan: Plan, results: dict[str, Any]) -> None:
    out: dict[str, Any] = {}
    log("peak RSS: one 100 MiB upload")
    out["upload"] = memory.upload()
    if has_module("ingest/sessions.py"):
        gib = 0.25 if plan.quick else 1.0
        log(f"peak RSS: {gib} GiB of session batches")
        out["sessions"] = memory.sessions(gib)
    results["memory"] = out


def run_profile(plan: Plan, results: dict[str, Any]) -> None:
    """py-spy on one server process under wrk load, per ingest endpoint (SQLite)."""
    from bench import profile

    out: dict[str, Any] = {}
    seconds = 4 if plan.quick else 8
    with servers.scratch("profile") as work:  # noqa: SIM117
        with servers.fieldreport(1, work, **servers.NO_SESSION_RATE_LIMITS) as fr:
            for ep in endpoints(fr):
                log(f"profile {ep.name}: py-spy {seconds} s under load")
                stacks = RESULTS.parent / f"profile-{ep.name}.txt"
                proc = psutil.Process(fr.pids[0])
                proc.cpu_percent()
                res = profile.profile(fr, fr.urls(ep.path)[0], ep.body, ep.headers, seconds, stacks)
                res["cpu_percent"] = proc.cpu_percent()
                res["seconds"] = seconds
                out[ep.name] = res
                log(
                    f"  {res['load']['rps']:.0f}/s under py-spy,"
                    f" server CPU {res['cpu_percent']:.0f}%"
                )
    results["profile"] = out


def run_delivery(plan: Plan, results: dict[str, Any]) -> None:
    from bench import delivery_suite

    if not delivery_suite.available():
        results["delivery"] = {"skipped": "this checkout has no delivery worker yet"}
        return
    reports, rounds, lat = (300, 1, 50) if plan.quick else (1000, 3, 200)
    log(f"delivery: bench.delivery --reports {reports} --rounds {rounds}")
    out = delivery_suite.helper_benchmark(reports, rounds, lat)
    out["ratio"] = round(out["worker_rps"] / out["client_rps"], 3) if out["client_rps"] else 0.0
    log(f"  worker {out['worker_rps']:.0f}/s, client loop {out['client_rps']:.0f}/s")
    log("delivery latency under ingest load")
    out["latency_loaded"] = delivery_suite.latency_under_load(8 if plan.quick else 15)
    out["method"] = DELIVERY_METHOD.format(reports=reports, rounds=rounds)
    results["delivery"] = out


DELIVERY_METHOD = (
    "Throughput and idle latency come from the delivery work's own benchmark, "
    "`bench/delivery.py`, run by `bench/run`: {reports} accepted reports (20 KB screenshot) are "
    "pushed as multipart to a local receiver process (`bench/apps/sink.py`) by the real worker "
    "(claim with leases, load from "
    "the database and blob store, send, record every attempt), then the same payloads are posted "
    "by a bare aiohttp loop with the same concurrency (64) and no database: the client ceiling "
    "(it renders each form with the worker's own renderer, one buffer per post: since session "
    "4 both are ~3x cheaper per post than with aiohttp's `FormData`, so the ratio compares "
    "everything but the rendering); "
    "{rounds} alternating round(s), medians. Idle latency: reports submitted one at a time to a "
    "server with its in-process worker. Under load: `fieldreport serve` with its worker and a "
    "destination pointing at the receiver, wrk submitting reports (20 KB screenshot) with 16 "
    "connections, every report delivered; probe reports every 200 ms measure 201 -> arrival."
)


QUICK_SKIPS = {
    "concurrency",
    "diagnostics",
    "fix",
}  # --quick leaves these out (name them with --only)

SECTIONS: dict[str, Callable[[Plan, dict[str, Any]], None]] = {
    "ingest": run_ingest,
    "floor": run_floor,
    "scale": run_scale,
    "concurrency": run_concurrency,
    "diagnostics": run_diagnostics,
    "peer": run_peer,
    "delivery": run_delivery,
    "memory": run_memory,
    "profile": run_profile,
    "fix": run_fix,
}


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 2-3 minutes, 1 round each")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: " + ",".join(SECTIONS)
    )
    parser.add_argument("--render-only", action="store_true", help="re-render from results.json")
    args = parser.parse_args()
    from bench import report

    if args.render_only:
        report.render(json.loads(RESULTS.read_text()), ROOT)
        return
    plan = Plan.make(args.quick)
    chosen = [s for s in args.only.split(",") if s] or [
        s for s in SECTIONS if not (plan.quick and s in QUICK_SKIPS)
    ]
    results: dict[str, Any] = {}
    if RESULTS.exists() and args.only:
        results = json.loads(RESULTS.read_text())  # keep the sections not re-run
    started = time.monotonic()
    settled: dict[str, dict[str, float]] = {}
    servers.keep_scratch_until_the_end()
    try:
        for name in chosen:
            calm = util.settle()
            log(
                f"== {name} (settled {calm['waited_s']} s: {calm['dirty_mib']} MiB dirty,"
                f" CPUs {calm['busy_pct']}% busy)"
            )
            settled[name] = calm
            SECTIONS[name](plan, results)
            RESULTS.parent.mkdir(exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1))
    finally:
        log("removing the run's scratch directories")
        servers.remove_kept_scratch()
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if plan.quick else "default",
        "rounds": plan.rounds,
        "seconds": plan.seconds,
        "connections": plan.connections,
        "duration_s": round(time.monotonic() - started),
        "machine": machine(),
        "sections": chosen,
        "settled": settled,
    }
    previous = results.get("meta")
    if args.only and previous:  # a partial re-run: keep the main run's facts, note this one
        previous.setdefault("reruns", []).append(
            {k: meta[k] for k in ("date", "mode", "duration_s", "sections", "settled")}
        )
        meta = previous
    results["meta"] = meta
    RESULTS.write_text(json.dumps(results, indent=1))
    report.render(results, ROOT)
    log(f"done in {round(time.monotonic() - started)} s: BENCHMARKS.md, docs/bench/*.png")


if __name__ == "__main__":
    sys.exit(main())
