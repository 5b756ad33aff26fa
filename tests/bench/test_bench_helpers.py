"""The benchmark's own parts that can be checked without load: bodies, wrk output parsing,
and the report renderer (the measurements themselves live in bench/, run by bench/run)."""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from pathlib import Path

import pytest
from bench.measure import Series, cpu_seconds, loop_cpu_seconds
from PIL import Image

from bench import payloads, report, wrk

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:8000/ingest
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.10ms    3.20ms  40.00ms   80.00%
  Latency Distribution
     50%    8.50ms
     75%   10.00ms
     90%   12.00ms
     99%    1.20s
  21000 requests in 3.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 1000
Requests/sec:   7000.00
"""


def test_wrk_output_counts_only_2xx_answers() -> None:
    parsed = wrk.parse(WRK_OUTPUT)
    assert parsed["requests"] == 21000
    assert parsed["errors"] == 1000
    assert parsed["socket_errors"] == 3
    assert parsed["rps"] == pytest.approx(7000 * 20000 / 21000, rel=1e-3)
    assert parsed["p50_ms"] == 8.5
    assert parsed["p99_ms"] == 1200.0


def test_wrk_lua_reads_the_body_from_a_file_and_templates_ids(tmp_path: Path) -> None:
    fixed = wrk._lua(tmp_path / "body", {"X-Key": "k"}, templated=False)
    assert "wrk.body = body" in fixed and "request = function" not in fixed
    templated = wrk._lua(tmp_path / "body", {}, templated=True)
    assert "request = function" in templated and "%08x" in templated


def test_report_body_is_a_real_multipart_report_with_12_fields() -> None:
    shot = payloads.screenshot_png()
    assert 190_000 <= len(shot) <= 210_000
    Image.open(io.BytesIO(shot)).verify()
    body, ctype = payloads.report_multipart(shot)
    boundary = ctype.split("boundary=")[1].encode()
    assert body.count(b"--" + boundary + b"\r\n") == 12
    assert body.endswith(b"--" + boundary + b"--\r\n")


def test_event_bodies_have_the_stated_size() -> None:
    event = payloads.fullstack_event("3f1c2a9e-0000-4000-8000-000000000000")
    assert len(event) == 300
    assert set(json.loads(event)) >= {"uuid", "type", "payload", "level", "timestamp"}
    peer = payloads.peer_event()
    assert wrk.ID_MARKER in peer
    assert len(peer.replace(wrk.ID_MARKER, b"0" * 32)) == 300


def test_series_medians() -> None:
    s = Series("x", [{"rps": r, "p50_ms": 1, "p99_ms": 2, "errors": 0} for r in (5, 1, 3)])
    assert s.rps == 3
    assert s.summary()["runs"] == [5, 1, 3]


def test_render_writes_markdown_and_plots(tmp_path: Path) -> None:
    def side(rps: float) -> dict[str, object]:
        return {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0, "runs": [rps]}

    row = {"endpoint": "events", "backend": "sqlite", "processes": 1, "body_bytes": 300,
           "ceiling": side(1000), "fieldreport": side(700), "ratio": 0.7,
           "fieldreport_rss_mib": 90.0}  # fmt: skip
    results = {
        "meta": {"date": "today", "mode": "quick", "rounds": 1, "seconds": 2, "connections": 64},
        "ingest": [row],
        "scale": [row, {**row, "processes": 2, "fieldreport_rss_mib": 170.0}],
        "peer": {
            "name": "Bugsink",
            "version": "2.6.1",
            "workers": 2,
            "bugsink": side(100),
            "fieldreport": side(700),
            "ratio": 7.0,
            "bugsink_digest_per_s": 50.0,
            "event_bytes": 300,
        },
        "memory": {
            "upload": {
                "size_mib": 100,
                "fieldreport": {"status": 201, "rss_before_mib": 80, "peak_rss_mib": 90},
            }
        },
    }
    report.render(results, tmp_path)
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| ingest events (sqlite) | >= 0.6 of ceiling | 0.70 | yes |" in text
    assert "| peer: full-stack events vs Bugsink | in our favour (> 1x) | 7.0x | yes |" in text
    for name in ("ingest", "scale", "peer", "memory"):
        assert (tmp_path / "docs" / "bench" / f"{name}.png").stat().st_size > 1000


def test_render_fix_shows_every_build_with_the_range_of_its_rounds(tmp_path: Path) -> None:
    def side(*runs: float) -> dict[str, object]:
        ordered = sorted(runs)
        return {"rps": ordered[len(ordered) // 2], "p50_ms": 5.0, "p99_ms": 9.0, "errors": 0,
                "cpu_us": 150.0, "runs": list(runs)}  # fmt: skip

    builds = [
        {**side(300, 320, 310, 305, 330), "rev": "75c5630", "label": "start", "ratio": 0.3},
        {**side(480, 700, 510, 650, 520), "rev": "eb13bce", "label": "session 11", "ratio": 0.51},
    ]
    fix = {"rows": [{"endpoint": "events", "ceiling": side(1000, 990, 1010, 1005, 995),
                     "builds": builds, "after": side(600, 620, 580, 610, 590),
                     "ratio_after": 0.6, "speedup": 1.94}]}  # fmt: skip
    lines = report.render_fix(fix, tmp_path)
    text = "\n".join(lines)
    assert "medians of 5 rounds" in text
    assert "| events | session 11 (`eb13bce`) | 520 (480-700) | 0.51 | 150 | 5 / 9 |" in text
    assert "| events | **this build** | 600 (580-620) | 0.60 |" in text
    assert "| events | speed-up since 75c5630 | 1.94x |" in text
    assert (tmp_path / "fix.png").stat().st_size > 1000


def test_loop_thread_cpu_leaves_out_the_other_threads() -> None:
    """Work on another thread counts for the process, not for its main (loop) thread."""
    pid = [os.getpid()]
    total, loop = cpu_seconds(pid), loop_cpu_seconds(pid)

    def spin() -> None:
        end = time.thread_time() + 0.4
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    assert cpu_seconds(pid) - total >= 0.3
    assert loop_cpu_seconds(pid) - loop < 0.2


@pytest.mark.parametrize("stub", [False, True])
async def test_sessions_inproc_drives_appends_through_the_app(
    stub: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import sessions_inproc

    args = argparse.Namespace(
        requests=20, concurrency=4, stub_writer=stub, callgrind=False, freeze=False
    )
    await sessions_inproc.run(args)
    out = capsys.readouterr().out
    assert out.startswith("20 batches, 4 at a time") and "loop thread" in out
    transactions = int(out.rsplit(";", 1)[1].split()[0])
    assert (transactions == 0) == stub


async def test_reports_inproc_drives_reports_through_the_app(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench import reports_inproc

    args = argparse.Namespace(
        requests=12,
        concurrency=4,
        chunk=65536,
        warmup=2,
        dir=None,
        callgrind=False,
        freeze=False,
    )
    await reports_inproc.run(args)
    out = capsys.readouterr().out
    assert out.startswith("12 reports, 4 at a time") and "other threads" in out
    transactions = int(out.rsplit(";", 1)[1].split()[0])
    assert 1 <= transactions <= 14  # the writer batches: at most one per report
