"""Delivery for ``bench/run``: the delivery helper's benchmark (``bench.delivery``: worker vs a
bare client loop, idle latency) plus accepted -> delivered latency while ingest is under load.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import payloads, servers, wrk
from bench.util import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]


def available() -> bool:
    return (ROOT / "bench" / "delivery.py").exists() and (
        ROOT / "src" / "fieldreport" / "delivery" / "worker.py"
    ).exists()


def helper_benchmark(reports: int, rounds: int, latency_reports: int) -> dict[str, Any]:
    """Run ``python -m bench.delivery`` and read its printed results."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.delivery", "--reports", str(reports), "--rounds",
         str(rounds), "--latency-reports", str(latency_reports)],
        env=servers.child_env(), cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=600,
    ).stdout  # fmt: skip

    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        if not m:
            raise RuntimeError(f"unexpected bench.delivery output:\n{out}")
        return float(m.group(1))

    lat = re.search(r"idle \((\d+) reports\): p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    return {
        "worker_rps": num(r"worker \(.*?\):\s+([\d.]+) deliveries/s"),
        "client_rps": num(r"bare aiohttp loop.*?:\s+([\d.]+) posts/s"),
        "latency_idle": {"count": int(lat.group(1)), "p50_ms": float(lat.group(2)),
                         "p99_ms": float(lat.group(3))} if lat else None,
        "output": out.strip(),
    }  # fmt: skip


def latency_under_load(seconds: float, probes_per_s: float = 5) -> dict[str, Any]:
    """``fieldreport serve`` (with its in-process worker) pushing every report to a local
    receiver while wrk submits reports with 16 connections; a probe report every 1/``probes_per_s``
    s measures accepted (201) -> arrived at the receiver."""
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.apps.sink", str(port)], env=servers.child_env(), cwd=ROOT
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/stats")
        with (
            servers.scratch("delivery") as work,
            servers.fieldreport(1, work, FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="true") as fr,
        ):
            fr.cli("destination", "add", "bench", f"http://127.0.0.1:{port}/push",
                   "--retry-schedule", "0s,1s,5s")  # fmt: skip
            body, ctype = payloads.report_multipart(payloads.screenshot_png(20_000))
            headers = {"Content-Type": ctype, "X-Fieldreport-Key": fr.public_key}
            url = fr.urls("/api/v1/reports")[0]
            load: dict[str, Any] = {}
            t = threading.Thread(
                target=lambda: load.update(
                    wrk.run(url, seconds=seconds, body=body, headers=headers, connections=16)
                )
            )
            accepted: dict[str, float] = {}
            t.start()
            time.sleep(1)
            with httpx.Client(timeout=30) as client:
                end = time.monotonic() + seconds - 2
                while time.monotonic() < end:
                    resp = client.post(url, content=body, headers=headers)
                    if resp.status_code == 201:
                        accepted[resp.json()["reportid"]] = time.time()
                    time.sleep(1 / probes_per_s)
            t.join()
            deadline = time.monotonic() + 30
            arrivals: dict[str, float] = {}
            while time.monotonic() < deadline:
                arrivals = httpx.get(f"http://127.0.0.1:{port}/stats").json()["arrivals"]
                if all(r in arrivals for r in accepted):
                    break
                time.sleep(0.5)
            count = httpx.get(f"http://127.0.0.1:{port}/stats").json()["count"]
    finally:
        sink.terminate()
        sink.wait(10)
    lat = sorted((arrivals[r] - at) * 1000 for r, at in accepted.items() if r in arrivals)
    if not lat:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "missing": len(accepted)}
    return {
        "count": len(lat),
        "missing": len(accepted) - len(lat),
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "ingest_rps": load.get("rps", 0.0),
        "delivered_total": count,
    }
