"""Render ``BENCHMARKS.md`` and ``docs/bench/*.png`` from the results of ``bench.suite``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

INGEST_TARGET = 0.6
DELIVERY_TARGET = 0.5
COLORS = {"reports": "#2f6fdf", "events": "#2a9d4a", "sessions": "#d1453b"}
UNITS = {"reports": "reports", "events": "events", "sessions": "batches"}


def _ok(value: float, target: float) -> str:
    return "yes" if value >= target else "**no**"


def _bar_pairs(
    ax: Any, labels: list[str], a: list[float], b: list[float], names: tuple[str, str]
) -> None:
    xs = range(len(labels))
    w = 0.38
    ax.bar([x - w / 2 for x in xs], a, w, label=names[0], color="#9aa5b1")
    ax.bar([x + w / 2 for x in xs], b, w, label=names[1], color="#2f6fdf")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_ingest(rows: list[dict[str, Any]], out: Path) -> None:
    labels = [f"{r['endpoint']}\n{r['backend']}" for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    _bar_pairs(ax1, labels, [r["ceiling"]["rps"] for r in rows],
               [r["fieldreport"]["rps"] for r in rows], ("bare ceiling", "fieldreport"))  # fmt: skip
    ax1.set_yscale("log")
    ax1.set_ylim(top=ax1.get_ylim()[1] * 4)  # room for the legend above the bars
    ax1.legend(fontsize=8, loc="upper left", ncols=2)
    ax1.set_ylabel("requests/s (log scale, median)")
    ax1.set_title("Ingest throughput, 1 server process")
    ratios = [r["ratio"] for r in rows]
    ax2.bar(
        range(len(rows)),
        ratios,
        color=["#2a9d4a" if x >= INGEST_TARGET else "#d1453b" for x in ratios],
    )
    ax2.axhline(INGEST_TARGET, color="black", ls="--", lw=1, label=f"target {INGEST_TARGET}")
    ax2.set_xticks(range(len(rows)), labels, fontsize=8)
    ax2.set_ylim(0, max(1.0, *ratios) * 1.1)
    ax2.set_ylabel("fieldreport / ceiling")
    ax2.set_title("Ratio to the ceiling")
    ax2.legend(fontsize=8)
    for i, x in enumerate(ratios):
        ax2.text(i, x + 0.02, f"{x:.2f}", ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_scale(rows: list[dict[str, Any]], out: Path) -> None:
    endpoints = sorted({r["endpoint"] for r in rows}, key=list(UNITS).index)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ep in endpoints:
        sel = sorted((r for r in rows if r["endpoint"] == ep), key=lambda r: r["processes"])
        procs = [r["processes"] for r in sel]
        axes[0].plot(
            procs,
            [r["fieldreport"]["rps"] for r in sel],
            "o-",
            color=COLORS[ep],
            label=f"fieldreport {ep}",
        )
        axes[0].plot(
            procs,
            [r["ceiling"]["rps"] for r in sel],
            "o--",
            alpha=0.6,
            color=COLORS[ep],
            label=f"ceiling ({ep} body)",
        )
        axes[1].plot(
            procs,
            [r["fieldreport_rss_mib"] for r in sel],
            "o-",
            color=COLORS[ep],
            label=f"fieldreport {ep}",
        )
    axes[0].set_yscale("log")
    axes[0].set_title("Throughput vs server processes (SQLite)")
    axes[0].set_ylabel("requests/s (log scale)")
    axes[1].set_title("Total RSS of the server processes after the run")
    axes[1].set_ylabel("MiB")
    for ax in axes:
        ax.set_xticks([1, 2])
        ax.set_xlabel("server processes")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_concurrency(rows: list[dict[str, Any]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for ep in sorted({r["endpoint"] for r in rows}, key=list(UNITS).index):
        sel = [r for r in rows if r["endpoint"] == ep]
        xs = [r["connections"] for r in sel]
        ax.plot(
            xs,
            [r["fieldreport"]["rps"] for r in sel],
            "o-",
            color=COLORS[ep],
            label=f"fieldreport {ep}",
        )
        ax.plot(
            xs,
            [r["ceiling"]["rps"] for r in sel],
            "o--",
            alpha=0.6,
            color=COLORS[ep],
            label=f"ceiling ({ep} body)",
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([4, 16, 64], ["4", "16", "64"])
    ax.set_xlabel("concurrent connections")
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title("Throughput vs concurrency (SQLite, 1 process)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_peer(peer: dict[str, Any], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    labels = ["Bugsink\naccepted", "Bugsink\ndigested", "fieldreport\nfull-stack events"]
    values = [peer["bugsink"]["rps"], peer["bugsink_digest_per_s"], peer["fieldreport"]["rps"]]
    ax.bar(labels, values, color=["#9aa5b1", "#c8ced6", "#2f6fdf"])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}/s", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("events/s (median)")
    ax.set_title(f"Small JSON events, same machine, same run ({peer['event_bytes']} B)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_memory(mem: dict[str, Any], out: Path) -> None:
    labels, before, peak = [], [], []
    up = mem.get("upload", {})
    for key, label in (
        ("fieldreport", "fieldreport\n100 MiB upload"),
        ("ceiling", "bare ceiling\n100 MiB upload"),
    ):
        if key in up:
            labels.append(label)
            before.append(up[key]["rss_before_mib"])
            peak.append(up[key]["peak_rss_mib"])
    if "sessions" in mem:
        s = mem["sessions"]
        labels.append(f"fieldreport\n{s['gib']} GiB sessions")
        before.append(s["rss_before_mib"])
        peak.append(s["peak_rss_mib"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    _bar_pairs(ax, labels, before, peak, ("RSS before", "peak RSS (VmHWM)"))
    ax.set_ylabel("MiB")
    ax.set_title("Server memory")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _ingest_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| endpoint | body | backend | processes | ceiling req/s | fieldreport req/s | MB/s in | "
        "ratio | target 0.6 | p50 / p99 ms | errors | server CPU µs/req, ceiling / fieldreport "
        "(ratio); fieldreport's loop thread |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["fieldreport"]
        mbs = f["rps"] * r["body_bytes"] / 1e6
        lines.append(
            f"| {r['endpoint']} | {r['body_bytes'] / 1000:.1f} KB | {r['backend']} | {r['processes']} "
            f"| {r['ceiling']['rps']:.0f} | {f['rps']:.0f} | {mbs:.1f} | {r['ratio']:.2f} "
            f"| {_ok(r['ratio'], INGEST_TARGET)} | {f['p50_ms']:.0f} / {f['p99_ms']:.0f} | {f['errors']} "
            f"| {_cpu_pair(r['ceiling'], f)} |"
        )
    return lines


COMMITS_NOTE = (
    "*Requests per commit*: fieldreport's writer jobs (one per request that waited for a "
    "commit, plus the in-process delivery worker's few) divided by the transactions its batch "
    "writer committed during the same runs; *flushes per report*: the local blob store's group "
    "flushes (one `syncfs` each) per report that waited for one. Both are read from the "
    "server's own `/metrics` (`fieldreport_db_write_*_total`, `fieldreport_blob_*_total`) "
    "before and after each measured run, medians of the runs. Under load many requests share "
    "one commit and one flush: a change that cuts the CPU per transaction can still lower "
    "throughput if requests end up split into more, smaller transactions, and this shows it. "
    "*n/a*: not counted (results of a build or run without these counters); *-*: the "
    "endpoint stores no files (events; session batches up to 256 KiB live in their row)."
)


def _commits_table(rows: list[dict[str, Any]]) -> list[str]:
    """Requests per commit and flushes per report of each fieldreport case."""
    lines = [
        "| endpoint | backend | processes | requests per commit | flushes per report |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["fieldreport"]
        per, flushes = f.get("per_commit"), f.get("flushes_per_request")
        per_cell = f"{per:.1f}" if per is not None else "n/a"
        flush_cell = f"{flushes:.3f}" if flushes is not None else "n/a"
        if flushes:
            flush_cell += f" (a syncfs per {1 / flushes:.0f} reports)"
        if flushes is None and f.get("commit_counts", {}).get("flush_waits") == 0:
            flush_cell = "-"  # counted: no request waited for a flush
        lines.append(
            f"| {r['endpoint']} | {r['backend']} | {r['processes']} | {per_cell} | {flush_cell} |"
        )
    return [*lines, "", COMMITS_NOTE]


def _cpu_pair(ceiling: dict[str, Any], ours: dict[str, Any]) -> str:
    """Server CPU per accepted request, the ceiling's and ours, and their ratio."""
    c, f = ceiling.get("cpu_us", 0.0), ours.get("cpu_us", 0.0)
    if not c or not f:
        return "not measured"
    loop = ours.get("loop_us", 0.0)
    return f"{c:.0f} / {f:.0f} ({c / f:.2f})" + (f"; loop thread {loop:.0f}" if loop else "")


def settling(meta: dict[str, Any]) -> str:
    """How the run let the machine calm down before each section (``bench.util.settle``)."""
    line = (
        "- **Settling:** before each section the suite writes back dirty pages (`sync`) and "
        "waits, at most 20 s, until less than 32 MiB is dirty and the CPUs are less than 40% "
        "busy, so that a section does not pay for the writeback of the one before it. The "
        "servers' data directories are removed at the end of the run, not after each case: "
        "this disk's ext4 runs without a journal, and without one a file created within "
        "minutes of many deletions costs up to ~25 times the CPU (new inodes skip recently "
        "freed ones, one by one)."
    )
    settled = meta.get("settled")
    if settled:
        waits = ", ".join(
            f"{name} {calm['waited_s']} s ({calm['busy_pct']:.0f}% busy)"
            for name, calm in settled.items()
        )
        line += f" Waits in this run: {waits}."
    return line


def render(results: dict[str, Any], root: Path) -> None:
    meta = results.get("meta", {})
    plots = root / "docs" / "bench"
    plots.mkdir(parents=True, exist_ok=True)
    md: list[str] = [
        "# Benchmarks",
        "",
        "Generated by `bench/run` (the numbers below are from a real run; re-run it to refresh them).",
        f"Run: {meta.get('date', '?')}, mode `{meta.get('mode', '?')}`, {meta.get('duration_s', '?')} s, "
        f"machine: {meta.get('machine', {}).get('cpus', '?')} cores, Python "
        f"{meta.get('machine', {}).get('python', '?')}, load average at the end "
        f"{meta.get('machine', {}).get('load_average', '?')}."
        + "".join(
            f" Re-run afterwards with `--only {','.join(r['sections'])}`: {r['date']} ({r['duration_s']} s)."
            for r in meta.get("reruns", [])
        ),
        "",
        "## How this is measured",
        "",
        "- Everything runs on loopback on one machine: servers, load generator, peer. The load comes "
        "from a second process, [wrk](https://github.com/wg/wrk) (1 thread, "
        f"{meta.get('connections', 64)} connections, keep-alive, a fixed POST body from a Lua script; "
        "with 2 server processes, one wrk per process with half the connections each, like a load "
        "balancer in front).",
        f"- **Side by side:** the servers compared run at the same time and take turns: each round runs "
        f"every target once for {meta.get('seconds', '?')} s; {meta.get('rounds', '?')} round(s), after a 1 s "
        "warm-up each. The table shows **medians** of those runs. The machine is small (2 cores) and "
        "shared (other jobs, e.g. test suites, run at the same time), so absolute numbers drift by tens "
        "of percent between runs; ratios measured in the same minute are far steadier.",
        settling(meta),
        "- **Ceiling:** the same stack (Starlette on uvicorn with uvloop and httptools, same process "
        "count) with an endpoint that only reads the body and answers a small JSON "
        "(`bench/apps/bare.py`), fed the same request bodies.",
        "- **Server CPU per request:** each server's user + system CPU time (all threads, from "
        "`/proc`) is read around every run and divided by its 2xx answers. Under load the server is "
        "CPU-bound, so `ceiling CPU / fieldreport CPU` is the throughput ratio it could reach on its "
        "own core; unlike requests/s it hardly moves when other jobs share the machine "
        "(`python -m bench.cpu_cost` measures just this). The *loop thread* is the share of "
        "fieldreport's main thread, where every request's Python code runs; its other threads (the "
        "SQLite writer, file writes, hashing) can use the second core, the loop thread cannot, so "
        "`ceiling CPU / loop thread CPU` bounds the ratio when wrk leaves room on the other core.",
        "- **fieldreport:** `fieldreport serve` with default settings except `--log-level warning` (the "
        "ceiling does not log either) and, for session batches, the per-key session rate limits turned "
        "off. Every 2xx answer means the data is durably stored: SQLite in WAL mode with "
        "`synchronous=FULL`; a report's files are written and made durable by one `syncfs` shared "
        "by concurrent requests before the rows that name them commit; session batches up to "
        "256 KiB are stored in their row, so the commit makes them durable. PostgreSQL: the local "
        "server (127.0.0.1:5432), a fresh database; blobs stay local.",
        "- Bodies: a **report** is multipart/form-data with a 200 KB PNG screenshot and 11 text fields "
        "(12 form fields); a **full-stack event** is 300 bytes of JSON (seed 001's fields); a **session "
        "batch** is a 20 KB JSON array of rrweb-like events (`/v1/web/append`).",
        "",
    ]
    summary: list[str] = []
    ingest = results.get("ingest", [])
    if ingest:
        plot_ingest(ingest, plots / "ingest.png")
        md += ["## Ingest vs the bare-framework ceiling", "", *_ingest_table(ingest), "",
               "![ingest](docs/bench/ingest.png)", "",
               "### Requests per commit, flushes per report", "", *_commits_table(ingest),
               ""]  # fmt: skip
        for r in ingest:
            summary.append(
                f"| ingest {r['endpoint']} ({r['backend']}) | >= {INGEST_TARGET} of ceiling | "
                f"{r['ratio']:.2f} | {_ok(r['ratio'], INGEST_TARGET)} |"
            )
    md += render_floor(results.get("floor"))
    scale = results.get("scale", [])
    if scale:
        plot_scale(scale, plots / "scale.png")
        md += ["## 1 vs 2 server processes (SQLite)", "",
               "Two `fieldreport serve` processes share one database and blob directory; two ceiling "
               "processes likewise. RSS is the sum over the processes, read after the run.", "",
               *_ingest_table(scale), "", *_commits_table(scale)[:-2], "",
               "| endpoint | processes | fieldreport RSS MiB |", "|---|---|---|"]  # fmt: skip
        md += [
            f"| {r['endpoint']} | {r['processes']} | {r['fieldreport_rss_mib']} |" for r in scale
        ]
        md += ["", "![scale](docs/bench/scale.png)", ""]
    diag = results.get("diagnostics")
    if diag:
        md += ["## Diagnostics (not targets)", "",
               "What the disk allows (`bench/diskceiling.py`: temp file, write, fsync, rename, directory "
               "fsync, 16 threads, no HTTP or database), and the same ingest with the data directory on "
               "tmpfs (`/dev/shm`, where fsync costs nothing; not durable, for comparison only).", "",
               "| measure | per second |", "|---|---|"]  # fmt: skip
        for size, rate in diag.get("disk", {}).items():
            md.append(f"| durable {int(size) / 1000:.0f} KB file writes on this disk | {rate} |")
        app = diag.get("app_overhead")
        if app:
            md.append(
                f"| the bare endpoint alone / inside fieldreport's app (its middleware: request ids, "
                f"metrics, error handling), 300 B | {app['bare']['rps']:.0f} / {app['app']['rps']:.0f} "
                f"(ratio {app['ratio']:.2f}) |"
            )
        md += [""]
        if diag.get("tmpfs"):
            md += [*_ingest_table(diag["tmpfs"]), "", *_commits_table(diag["tmpfs"])[:-2], ""]
    conc = results.get("concurrency", [])
    if conc:
        plot_concurrency(conc, plots / "concurrency.png")
        md += ["## Throughput vs concurrent connections (SQLite, 1 process)", "",
               "One round per point. A server limited by one serialized step keeps the same rate "
               "whatever the concurrency and only its latency grows; waits that can overlap (parallel "
               "fsyncs, reads) let the rate grow with more connections.", "",
               "| endpoint | connections | ceiling req/s | fieldreport req/s | ratio | fieldreport p50 ms |",
               "|---|---|---|---|---|---|"]  # fmt: skip
        md += [f"| {r['endpoint']} | {r['connections']} | {r['ceiling']['rps']:.0f} | "
               f"{r['fieldreport']['rps']:.0f} | {r['ratio']:.2f} | {r['fieldreport']['p50_ms']:.0f} |"
               for r in conc]  # fmt: skip
        md += ["", "![concurrency](docs/bench/concurrency.png)", ""]
    peer = results.get("peer")
    if peer:
        md += ["## Peer: Bugsink", ""]
        if "skipped" in peer:
            md += [f"Not measured in this run: {peer['skipped']}.", ""]
        else:
            plot_peer(peer, plots / "peer.png")
            b, f = peer["bugsink"], peer["fieldreport"]
            md += [
                f"[Bugsink](https://www.bugsink.com/) {peer['version']} (PyPI `bugsink`), installed by "
                "`bench/run` into its own virtual environment (`.bench/bugsink-venv`) and set up as its "
                "single-server guide says: `bugsink-create-conf --template=singleserver` (SQLite for data "
                f"and for its task queue), migrations, gunicorn serving `bugsink.wsgi` with {peer['workers']} "
                "workers (one per core) and `bugsink-runsnappea` digesting in the background. Deviations: "
                "no nginx in front (gunicorn on 127.0.0.1 directly) and the event quotas lifted (they "
                "would answer 429 after 1,000 events per 5 minutes). It receives small JSON events "
                f"({peer['event_bytes']} bytes, a fresh `event_id` each) on its Sentry-compatible store "
                "endpoint (`POST /api/<project>/store/`); fieldreport receives full-stack events "
                f"({peer['event_bytes']} bytes) on `POST /api/fullstack/v1/send`, both in the same run, "
                "taking turns.",
                "",
                "| server | accepted events/s | p50 / p99 ms | errors |",
                "|---|---|---|---|",
                f"| Bugsink | {b['rps']:.0f} | {b['p50_ms']:.0f} / {b['p99_ms']:.0f} | {b['errors']} |",
                f"| fieldreport | {f['rps']:.0f} | {f['p50_ms']:.0f} / {f['p99_ms']:.0f} | {f['errors']} |",
                "",
                f"fieldreport accepts **{peer['ratio']}x** Bugsink's rate. Bugsink's answer means "
                '"written to its ingest directory and queued"; it then digested '
                f"{peer['bugsink_digest_per_s']:.0f} events/s while its backlog lasted. fieldreport's 200 "
                "means the event row is committed (its event writer groups commits).",
                "",
                "![peer](docs/bench/peer.png)",
                "",
            ]
            summary.append(
                f"| peer: full-stack events vs Bugsink | in our favour (> 1x) | {peer['ratio']}x | "
                f"{_ok(peer['ratio'], 1.0)} |"
            )
    md += render_delivery(results.get("delivery"), summary)
    mem = results.get("memory")
    if mem:
        plot_memory(mem, plots / "memory.png")
        md += ["## Memory", "", "Peak resident set size (`VmHWM`) of a fresh server process.", "",
               "| case | status | RSS before MiB | peak RSS MiB |", "|---|---|---|---|"]  # fmt: skip
        up = mem.get("upload", {})
        if "fieldreport" in up:
            r = up["fieldreport"]
            md.append(f"| fieldreport, one report with a {up['size_mib']:.0f} MiB attachment (streamed) "
                      f"| {r['status']} | {r['rss_before_mib']} | {r['peak_rss_mib']} |")  # fmt: skip
        if "ceiling" in up:
            r = up["ceiling"]
            md.append(f"| bare ceiling reading the same body (`await request.body()`) | {r['status']} "
                      f"| {r['rss_before_mib']} | {r['peak_rss_mib']} |")  # fmt: skip
        if "sessions" in mem:
            s = mem["sessions"]
            md.append(f"| fieldreport, {s['gib']} GiB of session batches ({s['batches']} x "
                      f"{s['batch_bytes'] / 1000:.0f} KB, 8 concurrent, {s['mb_per_s']} MB/s) | 200 "
                      f"| {s['rss_before_mib']} | {s['peak_rss_mib']} |")  # fmt: skip
        md += ["", "![memory](docs/bench/memory.png)", ""]
    md += render_profile(results.get("profile"))
    md += render_fix(results.get("fix"), plots)
    if summary:
        head = [
            "## Targets at a glance",
            "",
            "| measure | target | measured | met |",
            "|---|---|---|---|",
        ]
        at = md.index("## How this is measured")
        md[at:at] = [*head, *summary, "", *floor_bounds(results.get("floor"))]
    (root / "BENCHMARKS.md").write_text("\n".join(md) + "\n")


#: The floor rows (bench/floor.py) that do the least durable write of an endpoint's bytes.
LEAST_DURABLE = {
    "reports": "reports, appended to a log",
    "sessions": "sessions, checked, appended to a log",
}


def floor_bounds(rows: list[dict[str, Any]] | None) -> list[str]:
    """Under the targets: how far the least durable write lets any endpoint go (the floor
    section's appended rows), beside the ingest target."""
    found = {r["endpoint"]: r for r in rows or []}
    parts = [
        f"{what} **{found[row]['floor_ratio']:.2f}** of the ceiling (fieldreport "
        f"{found[row]['of_floor']:.2f} of that)"
        for name, what in (
            ("reports", "a report's screenshot"),
            ("sessions", "a checked session batch"),
        )
        if (row := LEAST_DURABLE[name]) in found
    ]
    if not parts:
        return []
    return [
        f"What any endpoint can reach here (the floor section below): with nothing but the "
        f"least durable write of the bytes it accepted (appended to one log file, one group "
        f"`fdatasync`), {' and '.join(parts)}, in the same run. An ingest target above that "
        f"cannot be met on this machine by an endpoint whose 2xx means the data is on disk.",
        "",
    ]


def render_delivery(delivery: dict[str, Any] | None, summary: list[str]) -> list[str]:
    if not delivery:
        return []
    if "skipped" in delivery:
        return ["## Delivery", "", f"Not measured in this run: {delivery['skipped']}.", ""]
    ratio = delivery["ratio"]
    summary.append(
        f"| delivery vs bare client loop | >= {DELIVERY_TARGET} | {ratio:.2f} | {_ok(ratio, DELIVERY_TARGET)} |"
    )
    lines = ["## Delivery", "", delivery.get("method", ""), "",
             "| measure | value |", "|---|---|",
             f"| worker deliveries/s | {delivery['worker_rps']:.0f} |",
             f"| bare client loop posts/s (same payloads) | {delivery['client_rps']:.0f} |",
             f"| ratio | {ratio:.2f} |"]  # fmt: skip
    cpu = re.search(
        r"CPU per delivery: worker (\d+) µs, bare loop (\d+) µs", delivery.get("output", "")
    )
    if cpu:
        lines.append(
            f"| CPU per delivery (worker) / per post (bare loop), µs | {cpu[1]} / {cpu[2]} |"
        )
    for key, label in (("idle", "idle"), ("loaded", "under load")):
        lat = delivery.get(f"latency_{key}")
        if lat and lat.get("count"):
            lines.append(
                f"| accepted -> delivered, {label} (p50 / p99 ms, {lat['count']} reports) "
                f"| {lat['p50_ms']:.0f} / {lat['p99_ms']:.0f} |"
            )
    loaded = delivery.get("latency_loaded") or {}
    if loaded.get("ingest_rps"):
        lines.append(
            f"| ingest rate during the loaded latency run (reports/s) | {loaded['ingest_rps']:.0f} |"
        )
    return [*lines, ""]


def plot_fix(rows: list[dict[str, Any]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = [r["endpoint"] for r in rows]
    series = [
        (f"{b['label']} ({b['rev']})", [r["builds"][i]["ratio"] for r in rows])
        for i, b in enumerate(rows[0]["builds"])
    ] + [("this build", [r["ratio_after"] for r in rows])]
    w = 0.8 / len(series)
    colors = ["#c5ccd3", "#9aa5b1", "#2f6fdf", "#1b3f8f"]
    for i, (name, values) in enumerate(series):
        xs = [x - 0.4 + w * (i + 0.5) for x in range(len(labels))]
        ax.bar(xs, values, w, label=name, color=colors[i % len(colors)])
    ax.set_xticks(list(range(len(labels))), labels, fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.axhline(INGEST_TARGET, color="black", ls="--", lw=1)
    ax.set_ylim(0, max(INGEST_TARGET, *(r["ratio_after"] for r in rows)) * 1.15)
    ax.set_ylabel("fieldreport / ceiling")
    ax.set_title("Before / after the fixes (same run, 1 process, SQLite)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# What changed since the first baseline revision, in the order it was done.
FIXES = [
    "**One batch writer per process** (`storage/writer.py`): reports, session batches and "
    "backend events queue their rows; one task writes everything queued in one transaction "
    "(multi-row inserts, one ticket-counter update per project per transaction, where a report "
    "used to cost five statements) and answers each request after that commit. On SQLite the "
    "transaction runs on a synchronous connection in the writer's own thread: one thread hop "
    "per transaction instead of one per statement. It replaced three group-commit mechanisms.",
    "**Blobs made durable by a group flush** (`storage/blobs/flush.py`): a blob is written "
    "(temp file, rename) in one thread hop with its SHA-256 computed there, and one `syncfs` "
    "covers every blob written before it started, before the rows that name them commit; "
    "callers arriving during a flush share the next. It was one fsync per file and per "
    "directory, in a thread each, at most six at a time (the default executor's size here).",
    "**Key lookups in one thread hop** (`Database.run_read`): the project lookup of every "
    "report (key, then origins) runs as one synchronous read transaction in a reader thread "
    "on SQLite, where the async path cost about eight aiosqlite hops.",
    "**Full-stack send path**: the event is decoded and validated by msgspec in one pass (the "
    "original checks still produce every error message: the fast path only ever accepts), the "
    "answer is encoded by msgspec, headers are read in one pass: ~40% less CPU per request in "
    "the endpoint (in-process A/B, writer stubbed).",
    "**Session append path**: the web batch's array-of-objects check by msgspec without "
    "building objects (~790 -> ~60 us for 20 KB), verified tokens cached (expiry still checked "
    "to the second), the Origin normalised once per value: 3.8 M -> 0.9 M instructions per "
    "request (callgrind, storage stubbed).",
    "**HTTP path**: an indexed router in front of Starlette's linear route search (same "
    "choices, checked route by route against Starlette's), metric children cached per route "
    "and status, request ids from `os.urandom`: the bare endpoint inside our app went from "
    "0.65 to 0.82 of the bare endpoint alone.",
    "**`gc.freeze()` after start-up** (`serve` only): collections under load no longer walk "
    "the start-up objects: +12% full-stack events/s in an A/B run of the two builds.",
    "**Session batches in their rows** (session 3): a batch of up to 256 KiB is stored in "
    "`session_batches.data` and committed by the batch writer; no blob file, rename or flush "
    "per batch (larger ones still go to the blob store; migration 0006; lz4 TOAST compression "
    "on PostgreSQL). Every read path (API, replay) reads rows or blobs alike.",
    "**Report files created in place** (session 3): a fresh key is opened with `O_CREAT|O_EXCL` "
    "at its final path (no temporary file, no rename: 3 syscalls instead of 8), and keys are "
    "`reports/<project>/<yyyy-mm>/<report>.screenshot.png` (no directory per report). Old keys "
    "keep working; `gc --orphans` knows both layouts.",
    "**Report parsing** (session 3): the `multipart` package's push parser with our own glue "
    "(limits while streaming, spooling past 1 MiB, the closing-boundary check) instead of "
    "Starlette's form parser (~3.7 M -> 1.3 M instructions per report); the PNG check walks the "
    "chunks with zlib-ng's crc32 instead of Pillow's `verify()`; no thread hop for an in-memory "
    "screenshot; email validation results cached.",
    "**Events insert and writer** (session 3): the events insert and the key re-check as SQL "
    "written once per database (one multi-row INSERT on SQLite, `unnest` on PostgreSQL) instead "
    "of SQLAlchemy Core statements built per transaction; the writer's savepoint as plain SQL; "
    "the `/send` route as a plain ASGI app (same bytes and headers); `app.state` reads without "
    "Starlette's failing lookup: 508k -> 290k instructions per event in-process.",
    "**Reports: key lookup cached, re-checked at commit** (session 4): the public key -> "
    "project and origins lookup of every report ran in a reader thread (on PostgreSQL a "
    "`run_sync` round trip); it now comes from a 60-second cache of positive answers, and the "
    "write transaction confirms each report's key and origin in one statement per group (a "
    "rotated key or removed origin is refused at once). The writer job's statements are built "
    "once, report ids come from pooled `os.urandom` (no GIL release per report), in-memory "
    "uploads are written from their buffer. Server CPU per report (`bench.cpu_cost`, busy "
    "2-core box): SQLite ~2900-3100 -> ~2200-3000 µs, PostgreSQL ~4500-4800 -> ~2200-2400 µs.",
    "**HTTP path of session batches** (session 4): `append`/`late` run a plain ASGI app "
    "(the headers found in one pass, the body read from `receive`, the answer sent as two "
    "messages; every status, body and header pinned by tests as the Starlette endpoints gave "
    "them); the HTTP metrics counted in plain numbers and turned into samples at scrape time "
    "(same `/metrics`); uvicorn no longer formats access log lines that the log level drops. "
    "Per 20 KB web batch in-process with the writer stubbed: 702k -> 604k instructions "
    "(callgrind); the middleware alone 7.8 -> 5.8 µs per request; server CPU (cpu_cost, "
    "SQLite, on a 2-core machine loaded by other jobs) 738-751 -> 598-684 µs.",
    "**Session batches deflated in their rows** (session 4, SQLite): a batch kept in its row "
    "is deflated by zlib-ng (level 1) in the writer's thread when that saves an eighth, as JSON "
    "always does (20 KB -> ~2.7 KB here); reads inflate it back (migration 0007, `codec`). "
    "SQLite's own CPU per 20 KB row in a grouped commit: ~80 -> ~25 µs, for ~17 µs of deflate, "
    "and ~7x fewer bytes written to the WAL and the database (PostgreSQL kept compressing in "
    "TOAST until session 10, which deflates there too: see below).",
    "**Delivery worker** (session 4): the multipart push rendered into one buffer (it was "
    "`aiohttp.FormData`: a payload object per part and ~56 socket writes per request); the "
    "claim, with the claimed reports read in the same transaction, and the recording of "
    "finished attempts run as batch writer jobs (one thread hop per transaction on SQLite); "
    "a claimed batch's files read in one trip. Worker CPU per delivery ~2300-2700 -> ~1060 us "
    "on SQLite, ~2100-2550 -> ~1170-1315 us on PostgreSQL; the bare loop renders the same way "
    "(~1100 -> ~350 us per post), so the ratio of rates did not rise.",
    "**Writer jobs on the driver's cursor** (session 5): the batch writer's savepoints, the "
    "SQLite `BEGIN`, the events insert and key re-check, and the delivery worker's claims and "
    "records run their prebuilt SQL on the DBAPI cursor (`storage/driver.py`, SQLAlchemy's "
    "errors and invalidation kept) instead of `exec_driver_sql`, which cost 30-55 us a "
    "statement against 3-5. An events transaction of 64: job ~950 -> ~600 us, BEGIN ~130 -> "
    "~60 us.",
    "**Express lane** (session 5): a POST that the router would give a plain ASGI route "
    "(full-stack `send`, session `append`/`late`) goes straight to it inside the observability "
    "middleware, skipping Starlette's error and exception middlewares and the router, whose "
    "behaviour on an exception is reproduced by handing it to copies of them (same answers, "
    "request id and metrics: `tests/test_express.py`). With the sender memo (Authorization "
    "header -> project, skipping SHA-256 of a known key) and a fixed success answer: "
    "268k -> 180k instructions per event request (callgrind, SQLite); session batches "
    "334 -> 312 us server CPU in a paired run.",
    "**Session rows deflated by ISA-L** (session 5): same zlib format and CPU as zlib-ng "
    "level 1, but 1.9 KB rows instead of 2.7 KB (two per 4 KiB page), so fewer WAL pages.",
    "**Delivery worker** (session 5): claims, report loads and attempt records in plain SQL "
    "with the columns' own type processing (`storage/outbox.py`, `attempt_records.py`); at most "
    "`concurrency` lanes send the claimed queue instead of a task, a semaphore wait and a "
    "callback per delivery; "
    "what a send derives from the destination URL is worked out once; `fieldreport worker` "
    "and the delivery bench freeze start-up objects out of the garbage collector, as `serve` "
    "does (a full collection walked ~130k module objects, 50-85 ms). Worker CPU per delivery "
    "~650-850 -> ~420-470 us (SQLite and PostgreSQL), against ~210-260 us per bare post.",
    "**Report body parser** (session 6): our own multipart push parser "
    "(`ingest/form_parser.py`) in place of the `multipart` package's, keeping its grammar, "
    "limits and error messages (tests feed both the same valid, odd, broken and randomly "
    "mutated bodies, split at every size, and require the same parts, bytes and refusals); "
    "each distinct part header block is parsed once, the form is called directly (no "
    "generator), and part bytes are passed on as memoryviews (one copy of a screenshot, "
    "not two). The package's parser measured ~112 us for this body, ours ~53 us, and "
    "streaming-form-data (Cython) ~3400 us. Loop thread per report 2.06M -> 1.82M "
    "instructions (callgrind).",
    "**PNG check off the loop** (session 6): a screenshot's chunks and CRCs are checked in "
    "the worker thread's trip that hashes and writes it, before anything is written "
    "(`BlobStore.create(check=...)`; a corrupt PNG is still a 400 with nothing stored). Loop "
    "thread per report 1.82M -> 1.56M instructions (SQLite), 2.57M -> 2.12M (PostgreSQL).",
    "**PostgreSQL batch writer in its own thread** (session 6): the transaction of reports, "
    "events and session batches runs on psycopg in the writer's thread, on a connection it "
    "keeps, as SQLite's does on pysqlite (it ran through asyncpg's `run_sync` on the event "
    "loop: a pool checkout with its ping and every statement's round trip cost the loop "
    "thread ~900 us per transaction); `BEGIN` goes with the first `SAVEPOINT` and each "
    "`RELEASE` with the next (4 round trips for an events transaction instead of 6); "
    "multi-row inserts send their rows as one JSON text (16 events: ~700 -> ~130 us of the "
    "writer's CPU). In-process, loop CPU per event 185 -> 22 us; server loop thread per "
    "event (cpu_cost, 3 pairs) 164-186 -> 99-122 us, per session batch 256-282 -> 172-182.",
    "**Session batches** (session 6): the session counter update as plain SQL on the "
    "driver's cursor (a transaction of 30 sessions x 30 batches: writer job 564k -> 303k "
    "instructions per batch), lighter per-batch objects and header reads: 860k -> 812k "
    "instructions per batch in all (callgrind, in-process, `bench.sessions_inproc`).",
    "**Delivery worker** (session 6): a busy worker records what finished and claims what is "
    "due in one writer transaction per turn; attempt records as one `UPDATE ... FROM "
    "(VALUES ...)` per table on SQLite; bundles built without a coroutine per file; no closures per send; "
    "the young-generation threshold of the collector raised from 700 to 10,000 in `serve` "
    "and `worker` (the worker spent ~5% of its instructions collecting objects that "
    "reference counting frees anyway; same peak RSS). Worker instructions per delivery "
    "(callgrind) 1.147M -> 1.11M, then -4% for the collector.",
    "**Delivery worker claims ahead** (session 7): the worker claimed at most "
    "`per_destination` deliveries of one destination, so with one destination its 64 lanes "
    "ran dry during every turn that recorded and claimed (~18 of 64 sends in flight on "
    "average). It now claims up to twice the limits, as it did across destinations, and "
    "applies them where each send starts (`delivery/dispatch.py`: at most `per_destination` "
    "sending to one destination, none through an open circuit, one trial when half-open); "
    "claims held when a circuit opens are given back unattempted. ~38 sends in flight; "
    "paired runs (SQLite, 39 rounds): 1022 -> 1413 deliveries/s, CPU per delivery 520 -> "
    "440 us; PostgreSQL 720 -> 580 us.",
    "**Report rows queued by the flusher** (session 7): the blob group flush runs its "
    "`syncfs` calls on a thread of its own, one after another, and that thread queues a "
    "report's rows for the batch writer as the `syncfs` covering its files ends; the writer "
    "drains its queue on its own thread, transaction after transaction, answering each "
    "group through its event loop. Before, each step went back through the event loop and "
    "the shared thread pool (1.5-13 ms a hop under load, the flusher and the writer each "
    "idle half the time). Flush plus commit per report (p50/p90, SQLite, 16 connections) "
    "42/75 -> 33/57 ms; PostgreSQL reports won 9 of 10 paired runs (5-10%), SQLite reports "
    "unchanged: the server is short of CPU, not waiting.",
    "**Delivery worker's writer work** (session 7): on SQLite, UTC timestamps are written "
    "and read by datetime's own C methods (the same text Core writes, checked against it; "
    "Core's formatting and parsing cost ~25k instructions a value), `IN` and `VALUES` lists "
    "are padded to a power of two by repeating their last value (a batch of a new length "
    "was a new statement to prepare, ~700k instructions for 64 rows), the NULLs of a "
    "delivered attempt are written in the SQL, and the per-delivery dataclasses are no longer "
    "frozen (~600 instructions per field to build). Instructions per delivery (callgrind, "
    "every thread) 1.031M -> 0.881M, against 0.508M per bare post.",
    "**Two processes on one SQLite file take turns** (session 7): each batch writer holds an "
    "`flock` on `<database>-writer.lock` for its transaction, so a busy process no longer "
    "keeps the other asleep in SQLite's busy back-off (events p99 with 2 processes had "
    "reached 1.7 s; paired with session 6's build on a loaded machine 61 vs 123 ms).",
    "**A screenshot's PNG head judged without Pillow** (session 9): a PNG whose 13-byte "
    "`IHDR` (correct CRC, a mode in Pillow's own table, filter 0, sizes above zero, at most "
    "`MAX_IMAGE_PIXELS`) is directly followed by `IDAT` is accepted without `Image.open` "
    "(~17 -> ~1 µs); anything else still goes to Pillow, with the same verdicts (a hypothesis "
    "test compares both on mutated heads). Loop thread per report 1.370M -> 1.275M "
    "instructions (`bench.reports_inproc` under callgrind).",
    "**PostgreSQL transaction control on libpq** (session 9): the batch writer's `BEGIN`, "
    "savepoints and `COMMIT` go straight through psycopg's `pgconn.exec_` (the GIL released "
    "while it waits), errors translated as before (a lost connection invalidates, a deferred "
    "constraint failing at `COMMIT` is an `IntegrityError`). Writer thread CPU per "
    "transaction ~250 -> ~185 µs; under load ~30 events share a transaction, so per event "
    "the saving is within the noise.",
    "**Delivery worker, smaller cuts** (session 9): attempt rows go in as power-of-two "
    "slices (few statement texts, found prepared), the due query reads only `limit` rows "
    "when none can be skipped, SQLite UTC text comes from one fixed format, a success closes "
    "its circuit without building one and is recorded without a second clock read, "
    "`bundle_for` takes the files in one pass and the report's time becomes text only when a "
    "format reads it. Instructions per delivery (callgrind, every thread) 874.5k -> 838.8k, "
    "against ~506k per bare post.",
    "**Session batches on PostgreSQL deflated and kept whole in their rows** (session 10): "
    "left to TOAST, lz4 made the 20 KB batch ~3.4 KB, still over TOAST's ~2 KB threshold, "
    "so every batch was moved out of its row (two TOAST chunk rows and their index entries, "
    "each in the WAL). The writer now deflates it as on SQLite (ISA-L, ~1.9 KB) and "
    "migration 0008's `toast_tuple_target = 8160` keeps such a row whole in its page: WAL "
    "per batch 4034 -> 2302 bytes, PostgreSQL's CPU per batch 84-96 -> 49-59 µs "
    "(`bench.cpu_cost --pg-data`, which now also counts the PostgreSQL cluster's processes). "
    "Session 4 had measured only our server's side of this (the deflate, ~25-30 µs), with "
    "the rows still in TOAST.",
    "**PostgreSQL writer statements on libpq** (session 10): a transaction's session batch "
    "rows go in as one multi-row `INSERT` (the batch's bytes sent binary), and the events "
    "insert and the key re-check run through `driver.pg_exec_params` (prepared on the "
    "writer's connection at first use, errors translated as before) instead of psycopg's "
    "cursor: writer thread per session batch 248k -> 215k instructions, per event (a job of "
    "32) 29.3k -> 20.3k. With the deflate above, in a paired run against session 9's build "
    "(6 rounds, PostgreSQL): session batches 0.31 -> 0.42 of the ceiling, faster in every "
    "round; events 0.46 -> 0.50 (4 of 6 rounds faster).",
    "**Delivery worker** (session 10): its lanes stay alive between turns (1.94 -> 1.08 "
    "tasks created per delivery, the rest aiohttp's own), SQLite JSON columns are read by "
    "msgspec (Core's `json.loads` as the fallback for what msgspec refuses: a report's "
    "notelist ~4.3 -> 0.2 µs), and a bundle whose files were read ahead is built without a "
    "coroutine. Instructions per delivery (callgrind, every thread) 853.3k -> 827.7k, "
    "against 512.5k per bare post.",
    "**Full-stack send, fewer coroutine layers** (session 10): for a known sender no "
    "coroutine between the request and the writer, nor around the answer's two messages; "
    "the express lane reads a scope flag the observability middleware sets as the response "
    "starts instead of wrapping `send` once more; a body that arrives in one message is "
    "taken without a coroutine; the accepted event built with positional arguments. Loop "
    "thread 165.0k -> 151.0k instructions per event (`bench.events_inproc`, new, under "
    "callgrind); paired `bench.cpu_cost` (10 pairs on a busy machine) 106.3 -> 97.8 µs per "
    "event on average, within that run's ±20% spread. Not in this page's ingest and "
    "before/after tables, which ran before it landed.",
    "**HTTP path: express routes observe themselves** (session 11): the full-stack send and "
    "the session `append`/`late` routes count their received bytes and send their response "
    "start (status, `x-request-id`) through the middleware's per-request object, so no "
    "`receive`/`send` wrapper coroutines are built for them; the express lane runs inline in "
    "the app's `__call__`; request ids come from 256 at a time of one `os.urandom` call; "
    "one lookup per request for the metrics' count. A trivial express request 53.7k -> "
    "44.4k instructions, the loop thread per full-stack event 154.9k -> 146.1k (callgrind, "
    "in-process; same answers, headers, metrics and errors, pinned by tests).",
    "**PostgreSQL report writer on libpq** (session 11): the ticket counter update, the "
    "report and file rows (one JSON text each, in one statement with the projects' first "
    "destinations as data-modifying `WITH` queries), the delivery rows and the `NOTIFY` go "
    "straight through libpq instead of Core and psycopg's cursor: writer thread 391.7k -> "
    "70.8k instructions per report (`bench.reports_inproc --postgresql`, new, under "
    "callgrind), five round trips per transaction of reports instead of seven, PostgreSQL's "
    "own CPU ~338 -> ~250 µs per report (paired in-process runs, ±10%). Tests pin the rows "
    "equal to Core's on both backends.",
    "**Delivery worker, fewer Python calls per delivery** (session 12): claims, bundles and "
    "send results built positionally (keyword arguments cost a dataclass's `__init__` about "
    "twice as much: a claim 843 -> 363 ns), no generator for a destination's header secrets "
    "when it has none, the HTTP session not asked `.closed` per send (only `close()` closes "
    "it, and forgets it: three property calls through aiohttp), a destination with no "
    "circuit not asked `admit()`/`started()` as its send starts, a success's action value a constant (an enum's `.value` is two calls), one wake "
    "of the loop per delivery instead of two, the server's public URL (ticket links) read "
    "once a turn instead of per bundle (two properties and pydantic's attribute hooks). Loop "
    "thread 645.2-645.8k -> 618.3k instructions per delivery, every thread 850.5-853.8k -> "
    "824.1-844.2k (callgrind, 500 reports, first round; bare post 522-528k); in a second "
    "round (`--rounds 2`, statements already prepared) 814.1k -> 786.8k, loop thread 634.0k "
    "-> 610.7k, writer 175.6k -> 171.6k. Paired runs (7, SQLite, noisy: ratio 0.22-0.93 per "
    "run, before the public URL cut) CPU per delivery 340 -> 310 µs, loop thread 262 -> 240. "
    "The writer thread's first-round count moves by 10-20k between runs of the same build: "
    "how the deliveries fall into turns decides how many of its ~29 statement texts (padded "
    "list lengths) it prepares then (17-27k per delivery; 22, 5 and 0 prepares in three "
    "rounds of 1000): compare second rounds.",
    "**Errors found on the way**: a lost connection inside a batch is no longer retried caller "
    "by caller (it fails the batch: 503 for all, where the PostgreSQL restart test saw one "
    "500); session batches nested past the parser's depth and full-stack text with a lone "
    "surrogate escape are refused with 400 (they were 500s).",
]


def spread(summary: dict[str, Any]) -> str:
    """`` (lowest-highest)`` of a series' rounds, or nothing for a single round."""
    runs = summary.get("runs") or []
    return f" ({min(runs):.0f}-{max(runs):.0f})" if len(runs) > 1 else ""


def render_floor(rows: list[dict[str, Any]] | None) -> list[str]:
    """Ceiling, floor and fieldreport side by side (``bench/floor.py``)."""
    if not rows:
        return []
    lines = [
        "## The floor: what a checked, durable endpoint can reach",
        "",
        "The ceiling only reads the body. Before its 2xx, fieldreport must also check and store "
        "what it read. The *floor* (`bench/apps/floor.py`) is the ceiling's endpoint on the same "
        "stack plus only that unavoidable part, done by fieldreport's own code and nothing else "
        "of it (no middleware, keys or form fields, and no database but where a row is the "
        "durable write). A row per floor:",
        "",
        "- *reports*: the screenshot cut out of the body with two `bytes.find` calls, then its "
        "SHA-256, PNG chunk check, file write and group `syncfs` (the local blob store's "
        "`create` and `flush`);",
        "- *reports, durable write only*: the same file write and `syncfs` (no hash, no check);",
        "- *reports, appended to a log*: the screenshot appended to one log file (`os.write`) "
        "and made durable by a group `fdatasync` (fieldreport's `GroupFlush`: one call for all "
        "requests waiting then): no file per screenshot, no hash, no check. The least any "
        "endpoint that keeps the screenshot durably must do;",
        "- *sessions*: the JSON check alone (`fast_events_count`), nothing stored;",
        "- *sessions, checked, appended to a log*: the check, then the batch appended to a log "
        "file with a group `fdatasync` (no deflate, index or counters): the least any endpoint "
        "that checks a batch and keeps it durably must do;",
        "- *sessions, checked and stored*: the check, then the batch stored as fieldreport "
        "stores it in its row (a `BatchRecord` committed by fieldreport's batch writer: "
        "counters, deflate, one SQLite transaction with `synchronous=FULL` shared by "
        "concurrent requests), without fieldreport's token, rate limit or middleware.",
        "",
        "Ceiling, floor and fieldreport take turns in the same run (SQLite, 1 process each). "
        "`floor / ceiling` bounds what any endpoint doing this work on this stack and machine "
        "can reach against the ceiling; `fieldreport / floor` is how much of that fieldreport "
        "reaches.",
        "",
        "| endpoint | ceiling req/s (CPU µs/req) | floor req/s (CPU µs/req) | floor / ceiling "
        "| fieldreport req/s (CPU µs/req) | fieldreport / ceiling | fieldreport / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, f, ours = r["ceiling"], r["floor"], r["fieldreport"]
        lines.append(
            f"| {r['endpoint']} | {c['rps']:.0f} ({c['cpu_us']:.0f}) | {f['rps']:.0f} "
            f"({f['cpu_us']:.0f}) | **{r['floor_ratio']:.2f}** | {ours['rps']:.0f} "
            f"({ours['cpu_us']:.0f}) | {r['ratio']:.2f} | {r['of_floor']:.2f} |"
        )
    return [*lines, ""]


def render_fix(fix: dict[str, Any] | None, plots: Path) -> list[str]:
    if not isinstance(fix, dict) or not fix.get("rows") or "builds" not in fix["rows"][0]:
        return []
    rows = fix["rows"]
    plot_fix(rows, plots / "fix.png")
    builds = rows[0]["builds"]
    names = [f"{b['label']} (`{b['rev']}`)" for b in builds] + ["this build"]
    lines = [
        "## Before / after the fixes",
        "",
        "Earlier builds (each git revision run from its own `src/` tree) and this build take "
        "turns with the ceiling in the same run (SQLite, 1 process, medians of "
        f"{len(rows[0]['ceiling'].get('runs') or [])} rounds, their range in brackets), so the "
        "speed-up is measured, not remembered: " + ", ".join(names) + ". What changed:",
        "",
        *[f"- {fix_text}" for fix_text in FIXES],
        "",
        "| endpoint | build | req/s (rounds' range) | ratio to ceiling | server CPU µs/req "
        "| p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["ceiling"]
        olds = zip(names, r["builds"], strict=False)  # names ends with "this build"
        entries = [("ceiling", c, 1.0)] + [(n, b, b["ratio"]) for n, b in olds]
        entries.append(("**this build**", r["after"], r["ratio_after"]))
        for name, s, ratio in entries:
            cpu = f"{s['cpu_us']:.0f}" if s.get("cpu_us") else "not measured"
            lines.append(
                f"| {r['endpoint']} | {name} | {s['rps']:.0f}{spread(s)} | {ratio:.2f} | {cpu} "
                f"| {s['p50_ms']:.0f} / {s['p99_ms']:.0f} |"
            )
        for b in r["builds"]:
            if b["rps"]:
                lines.append(
                    f"| {r['endpoint']} | speed-up since {b['rev']} "
                    f"| {r['after']['rps'] / b['rps']:.2f}x | | | |"
                )
    lines += ["", "![fix](docs/bench/fix.png)", ""]
    return lines


def render_profile(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    lines = ["## Profile of the hottest path", ""]
    for name, p in profile.items():
        lines += [
            f"### {name}",
            "",
            f"py-spy sampled one server process at 200 Hz for {p['seconds']} s under wrk load "
            f"({p['load']['rps']:.0f} req/s during the sample; {p['samples']} samples over all threads). "
            "Own time (where the samples were):",
            "",
            "| % | function |",
            "|---|---|",
            *[f"| {pct} | `{fn}` |" for fn, pct in p["own"]],
            "",
        ]
        if p.get("cpu_percent") is not None:
            lines += [f"Server CPU during the load: {p['cpu_percent']:.0f}% of one core.", ""]
    lines += FINDINGS
    return lines


FINDINGS = [
    "### What the profile shows now",
    "",
    "The server is CPU-bound on every ingest endpoint (90-100% of one core above). Its *loop "
    "thread* (ingest table) is where every request's Python runs; the database writer, the "
    "blob flusher, file writes and hashing run on other threads that can use the second core. "
    "Session 7 measured where the time of each path goes, thread by thread "
    "(`python -m bench.threadsched`: on a CPU, waiting for one, asleep), instead of trusting "
    "sampled stacks. What is left:",
    "",
    "1. **Reports (0.20 SQLite / 0.24 PostgreSQL here, on a machine slower than session 12's, "
    "where they were 0.24 / 0.30): no endpoint that keeps the screenshot durably reaches 0.6 "
    "on this machine.** The floor section settles it. The ceiling's own endpoint plus only the "
    "durable write of the screenshot as fieldreport does it (a file and a group `syncfs`, no "
    "hash, no check, no form, no database) reached 0.32 of the ceiling in this run (0.40 in "
    "session 12's); with the SHA-256 and PNG check added 0.33 (0.41). Session 13 added the "
    "least durable write any design could do: the screenshot appended to one log file and a "
    "group `fdatasync` for all requests waiting (no file per screenshot, no hash, no check, no "
    "index): 0.43 of the ceiling here (0.38 in a run of `bench.floor` before it). "
    "fieldreport reached 0.60-0.62 of the file floor and 0.47 of the log floor. So 0.6 of the "
    "ceiling is out of reach of any endpoint whose 2xx means the 200 KB are on this disk; "
    "what is left between fieldreport and the floors is the form, the hash and check, the "
    "database row and the threads' hand-offs below. "
    "Short of CPU, not waiting: under load the loop thread is on a CPU 25-45% of the time and "
    "*ready but waiting for one* 30-50%, with the machine 0-9% idle, at 4, 16 and 64 "
    "connections alike (session 7's `bench.threadsched`). So the report path is not "
    "serialized behind one step; it simply costs ~1.1-1.4 ms of CPU per report (ingest "
    "table) against the ceiling's ~0.25-0.3. Where it goes: HTTP and the body (what the "
    "ceiling pays), the form (~55 µs), the PNG's chunk check and writing the file in a file "
    "thread, its SHA-256 (~100 µs with SHA-NI), one `syncfs` per group, the database, and "
    "the threads waking each other (57 futex calls per report, 66% of them the default "
    "executor's six workers, each write job giving the GIL up ~4 times). Session 10 "
    "measured the loop thread at 1.236M instructions per report: the 200 KB join of the "
    "spooled screenshot 16% (a few µs timed: callgrind counts a copy byte by byte), "
    "`bytes.find` for the boundary 9%, the one executor hop 5%. Tried and not kept in session "
    "10 (paired in-process runs): writing the pieces with `writev` and hashing them piece by "
    "piece (loop thread -14% instructions, but the file thread +37-75 µs per report for the "
    "extra GIL releases of three more hash updates), holding the group flush while writes "
    "are in flight (same number of transactions: rows join a flush only after a trip "
    "through the event loop), glibc `memmem` through ctypes (+35% loop instructions for 54 "
    "foreign calls), a 2-worker default executor (more transactions, no less CPU); in "
    "session 9, dedicated file threads (fewer futex calls but 2x the `syncfs` calls, no less "
    "CPU). Session 11 moved the PostgreSQL report job onto libpq (writer thread 391.7k -> "
    "70.8k instructions per report) and tried a *hold* on the group flush (a report promises "
    "its flush before writing its files; a due `syncfs` waits at most 20 ms for such "
    "promises): in-process on tmpfs half the transactions and `syncfs` calls per report and "
    "~10% less CPU, but in that session's first full run reports fell against session 10's "
    "build in the before/after table (797 -> 669/s) with another change in, and it was "
    "reverted untested on this disk alone. Session 12 measured it alone with the new "
    "write-path counters (5 pairs of `bench.cpu_cost` each): on tmpfs requests per commit "
    "15-20 -> 35-58, `syncfs` per report 0.07-0.16 -> 0.02-0.05 and CPU per report 1228 -> "
    "1058 µs (medians, 4 of 5 pairs lower); on this ext4 disk commits and flushes fell the "
    "same way but CPU per report rose in all five pairs (by 10-45%: 1022 -> 1481, 1930 -> "
    "2618, ...). Not landed; why fewer `syncfs` cost more CPU here is not understood.",
    "2. **Creating files right after many deletions.** This disk's ext4 has no journal, and "
    "then ext4 does not reuse an inode freed in the last minute (up to six while its block is "
    "dirty): each new file scans past the recently freed ones. Creating a report's file "
    "cost 31 µs in a quiet directory and 400-865 µs right after 3000 deletions; in session "
    "6's run `Draft._open` was 35% of the report profile, now (the suite keeps its scratch "
    "directories until the end) 5%. A production server deleting many old reports at once "
    "(retention, `gc`) pays this for a few minutes on such a filesystem; a journaled ext4 "
    "or XFS does not.",
    "3. **Session batches (0.49 SQLite / 0.44 PostgreSQL here; 0.47 / 0.40 in session 12's "
    "run): at the floor of any checked, durable endpoint.** Session 12's floor (the "
    "ceiling's endpoint plus the structure check alone, nothing stored) reached 0.69 and did "
    "not rule 0.6 out. Session 13 added the two floors that store: the check plus the least "
    "durable write (the batch appended to one log file, one group `fdatasync`, no deflate, "
    "index or counters) reached 0.46 of the ceiling in this run (0.54-0.55 in three runs of "
    "`bench.floor` before it), and the check plus fieldreport's own batch writer (the "
    "session's counters, the deflate, one SQLite commit shared by the waiting requests, no "
    "token, rate limit or middleware) 0.47 (0.45-0.52). fieldreport reached 0.98-1.06 of "
    "both in every run: its HTTP app, token, rate limit and middleware cost nothing these "
    "runs can see beside the check and the durable write, and no endpoint that checks a "
    "batch and keeps it on this disk before its 2xx reaches 0.6. Per thread (/proc, one run): "
    "fieldreport's loop thread 234 µs user + 35 µs system per batch, its writer 79 + 18; "
    "the ceiling 147 + 45. The deflate (ISA-L level 1, 28 µs here) runs without the GIL "
    "(two threads: 0.13 s against 0.23 s for the same work), beside the loop. On PostgreSQL, "
    "session 10 found each 20 KB batch moved out of its row by TOAST "
    "(lz4 left ~3.4 KB, over TOAST's ~2 KB threshold): two TOAST rows and index entries "
    "each. Deflated by the writer and kept whole in the row (migration 0008), with the rows "
    "inserted on libpq, PostgreSQL's own CPU per batch halved (~88 -> ~40-54 µs) and a "
    "paired run against session 9's build went from 0.31 to 0.42 of the ceiling. Within "
    "the floors, the loop thread's largest piece is the structure check of the rrweb array (msgspec, ~34 µs in a "
    "microbenchmark on session 12's machine, 52 µs on this one, 45-54 µs inside the loaded "
    "server): with it "
    "stubbed out the loop thread dropped 70-85 µs per batch and the rate rose ~30%. No "
    "well-kept library does that exact check cheaper or without the GIL (measured, "
    "instructions per 20 KB batch: msgspec `list[Struct]` 384k, `Raw` 292k but only checks "
    "syntax, `list[Raw]` 371k; pysimdjson ~27 µs to parse alone but ~68 µs with a Python "
    "object per item to check types; python-rapidjson 294-448 µs; SQLite's `json_valid` "
    "75 µs without the GIL, but its grammar changes with SQLite's version; re-measured in "
    "session 13: pysimdjson 7.0.2 41 µs to parse alone against msgspec's 52). The rest is "
    "uvicorn and httptools (what the ceiling pays) and the writer thread's share of the GIL.",
    "4. **Full-stack events: 0.75 SQLite / 0.73 PostgreSQL in this section, both met** (0.70 "
    "/ 0.74 in session 12's run; CPU ratio 0.77 / 0.77 here), ~32 requests per commit on "
    "both. The before/after table puts session 10's and 11's builds ahead again (4999 and "
    "4918 against 4652 events/s) with overlapping rounds. Session 13 checked it two ways: 4 "
    "pairs of `bench.cpu_cost` against session 11's build gave this build 1-5% more CPU per "
    "event in 3 of 4 pairs (loop thread +0.3-4.6%), but callgrind in-process (2000 events, "
    "`bench.events_inproc`) counts the same work for both: loop thread 144.3k against 144.6k "
    "instructions per event, writer 54.7k against 54.7k, 563 transactions each. The code an "
    "event runs has not grown; what the wall-clock runs show is within their spread. "
    "Session 11 cut the loop thread's instructions per event 154.9k -> "
    "146.1k (express routes observe themselves, callgrind). Its SQLite writer change "
    "(`BEGIN`/`COMMIT` on pysqlite itself, no savepoint for a lone caller: 154k -> 80k "
    "instructions per empty transaction) ran more, smaller transactions in the benchmark "
    "(5538 against 6908 events/s in the before/after table) and was reverted; session 12 "
    "paired it with the new counters (6 pairs): ~32-36 requests per commit for both builds, "
    "so its 74k instructions per transaction are ~2k per event under load (events 218 -> 210 "
    "µs median, sessions mixed): not worth its 300 lines, left out. Session 10 moved "
    "the PostgreSQL "
    "writer's events insert and key re-check onto libpq (writer 29.3k -> 20.3k instructions "
    "per event; a paired run 0.46 -> 0.50). Of PostgreSQL's own ~30 µs per event, the "
    "foreign-key check on `projects` is ~8-10 µs (needed for `ON DELETE CASCADE`). A shorter "
    "GIL switch interval (0.5 ms) was tried and cost more CPU per event.",
    "5. **Delivery (0.60 here, met; 0.48 in session 12's run, 0.40 in session 11's, 0.54 in "
    "session 10's):** the bare loop did 3204 posts/s and the worker 1928 deliveries/s, at 490 "
    "against 310 µs of CPU each. The code is session 12's; the machine is not. On session "
    "12's machine the bare loop cost 190 µs a post and the worker 380 µs a delivery; on this "
    "slower one the bare loop's cost grew more (310) than the worker's (460-490), and six "
    "`bench.delivery` runs before this one gave 0.62-0.66. Session 12's run had 0.66 context "
    "switches per delivery against 0.07 per post (this machine: 0.84-1.23 against 0.07). "
    "Session 10 found the CPU gap matching the "
    "instruction gap (827.7k against 512.5k per delivery, callgrind, every thread): system "
    "time and syscalls are about the same on both sides (the worker ~3.5 more syscalls per "
    "delivery, ~1 futex). The extra is the SQLite writer thread (~200k instructions, most of "
    "it SQL work: `sqlite3_step` ~70k, fetching rows 30k, binding 13-16k, taking the GIL "
    "back ~20k) and ~110k more on the loop thread. Its lanes now stay alive between turns "
    "(tasks per delivery 1.94 -> 1.08). pysqlite gives the GIL up and takes it back for "
    "every statement and every row fetched, so the writer and the loop thread wait on each "
    "other: that slows each turn more than it costs CPU. Session 12 tested that: the claim's "
    "due rows, reports and files read as one JSON value per statement (`json_group_array`, "
    "one step instead of one per row: three of the writer's ~3.3 steps per delivery gone) cut the writer's GIL re-takes 9.4k -> 0.5k and its row fetching by ~46k "
    "instructions per delivery, but SQLite's JSON building (+25k) and msgspec's decoding "
    "(+11k) cost as much, and context switches per delivery did not move (0.89 against 0.90, "
    "8 paired runs): dropped. Per thread (/proc, 3 rounds), a turn records and claims ~53 "
    "deliveries (19 transactions per 1000) and the writer thread sleeps 7-22 times in it, "
    "the loop thread 3-10: most of the worker's extra switches are GIL waits bounded by the "
    "5 ms switch interval and the loop's callbacks, not by the writer's number of steps. "
    "Session 12 cut the loop thread's Python calls per delivery instead (645k -> 618k "
    "instructions). Under callgrind the benchmark's own completion poll (a Core count query "
    "through SQLAlchemy's greenlets every 20 ms once every attempt is sent) shows as ~5k "
    "instructions per delivery of the worker's loop thread.",
    "6. **Two processes on one SQLite file.** With the writer draining its queue on its own "
    "thread, a busy process began its next transaction microseconds after its commit while "
    "the other slept in SQLite's busy back-off (1-100 ms sleeps): events p99 reached 1.7 s. "
    "The writers now take turns through a file lock (`storage/writer_turns.py`); in this "
    "run's scale table p99 23 ms (events) and 42 ms (sessions). Two processes do not add "
    "throughput in proportion: they share one SQLite writer and one disk's `syncfs`, and two "
    "cores with wrk beside them (this run: reports 554 -> 716/s, events 4840 -> 5820/s, "
    "sessions 2897 -> 3718/s, while the ceiling's two processes gained 34-45%; requests per "
    "commit fell from 20-32 to 13-20).",
    "",
    "**How steady these ratios are.** Ratios from one section move by 0.1-0.25 between runs "
    "here (session 6's re-run of its ingest section minutes later: SQLite events 0.60 -> "
    "0.57, reports 0.23 -> 0.15; PostgreSQL events 0.62 -> 0.37). The before/after table "
    "(every build taking turns with the ceiling in the same minutes) and the CPU per "
    "request are the steadier measures. Since session 7 each section starts on a settled "
    "machine (`sync`, little dirty memory, idle CPUs) and no section pays for the file "
    "deletions of the one before.",
    "",
    "The ingest targets (0.6 of a body-reading endpoint) were met for full-stack events on "
    "SQLite in this run's ingest section and in session 9's run, not on PostgreSQL here "
    "(0.58): the "
    "ceiling only reads the body, while every fieldreport endpoint also authenticates, "
    "parses, checks, writes and makes durable what it read, in Python, before answering. "
    "The server CPU per request (ingest table) shows how far each endpoint is from its "
    "ceiling independently of the machine's noise.",
]
