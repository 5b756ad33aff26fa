"""Run the reliability suite and rewrite the results table in ``docs/reliability.md``.

    python -m tests.reliability.report            # everything (a few minutes)
    python -m tests.reliability.report -k attack  # extra arguments go to pytest

Each test in ``tests/reliability`` describes what it tried, what held and its numbers
(``record(...)`` in conftest.py); tests elsewhere that cover a listed attack are run too
(REFERENCED below). The outcome of every test comes from pytest's JUnit XML, so a
failing test shows as FAILED in the table: nothing here is written by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET  # our own pytest's output, not untrusted input
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# Tests outside tests/reliability that cover an item of the list: (area, tried, held).
REFERENCED: dict[str, tuple[str, str, str]] = {
    "tests/ingest/test_session_images.py::test_filenames_are_never_paths": (
        "attack",
        "path traversal in session image hashes (`../../../etc/passwd`, `%2F`, absolute, "
        "too short/long, trailing newline)",
        "400, nothing stored: the hash must be hex of a known length",
    ),
    "tests/ingest/test_reports.py::test_too_large_is_413_and_stores_nothing": (
        "attack", "oversized report body (declared length)", "413 before reading, nothing stored"
    ),
    "tests/ingest/test_reports.py::test_too_large_chunked_body_is_413": (
        "attack", "oversized report body, chunked (no length)", "413 while streaming"
    ),
    "tests/ingest/test_sessions_mobile.py::test_oversize_batches_are_413_and_leave_nothing": (
        "attack", "oversized session batches", "413, nothing stored"
    ),
    "tests/ingest/test_sessions_mobile.py::test_gzip_bomb_is_413_and_invalid_gzip_400": (
        "attack", "gzip bomb as a mobile batch", "413 once the inflated limit passes; 400 bad gzip"
    ),
    "tests/ingest/test_sessions_web.py::test_web_zip_bomb_and_invalid_gzip": (
        "attack", "gzip bomb as a web batch", "413 / 400, nothing stored"
    ),
    "tests/ingest/test_reports.py::test_secret_key_of_other_project_sees_nothing": (
        "attack", "project A's secret key on project B's reports", "404, nothing shown"
    ),
    "tests/ingest/test_sessions_mobile.py::test_reading_api_is_per_project": (
        "attack", "project A's secret key on project B's sessions", "404, nothing shown"
    ),
    "tests/ingest/test_sessions_mobile.py::test_expiry_and_late_grace_follow_the_clock": (
        "attack", "session token used past expiry, within and past the late grace",
        "append 401 after expiry, late accepted within grace, 401 after",
    ),
    "tests/delivery/transports/test_email.py::test_hostile_fields_are_escaped_and_cannot_inject_headers": (  # noqa: E501
        "attack", "header injection through report fields into delivery email",
        "fields are escaped; no header can be added",
    ),
    "tests/delivery/test_formats.py::test_xml_escapes_everything_and_validates": (
        "attack", "XML injection through report fields (`]]>`, `<!ENTITY …>`, `</note><note>`, "
        "control characters) into the xml push", "escaped as text, XSD-valid, no markup added",
    ),
    "tests/delivery/test_cli.py::test_add_refuses": (
        "attack", "SSRF: `destination add` with loopback, private, metadata URLs",
        "refused at add time",
    ),
    "tests/delivery/test_cli.py::test_private_destination_refused_again_at_send_time": (
        "attack", "SSRF: a private destination added while allowed, sent once not allowed",
        "the worker refuses to send",
    ),
    "tests/delivery/test_worker_crash.py::test_sigkilled_worker_is_taken_over": (
        "fault", "SIGKILL of a worker in the middle of deliveries (in process + subprocess)",
        "leases run out, the survivor delivers all; duplicates at most the sends in flight",
    ),
    "tests/delivery/test_ssrf.py": (
        "attack", "SSRF: destinations naming loopback, private, link-local, metadata addresses "
        "(literals and names resolving to them)", "refused unless private destinations are allowed",
    ),
    "tests/test_server_process.py::test_every_acknowledged_report_survives_sigkill": (
        "fault", "SIGKILL of `serve` right after acknowledging reports",
        "every acknowledged report is there after the restart",
    ),
    "tests/test_server_process.py::test_sigterm_lets_in_flight_upload_finish": (
        "fault", "SIGTERM of `serve` during an upload", "the in-flight upload finishes, then exit",
    ),
    "tests/test_server_process.py::test_100mib_upload_does_not_grow_server_memory": (
        "load", "a 100 MiB upload to `serve`", "the server's memory does not grow with it",
    ),
}  # fmt: skip

# Tests in tests/reliability that cannot call record() (hypothesis, pure units).
STATIC: dict[str, tuple[str, str, str]] = {
    "tests/reliability/test_parsing_properties.py::test_multipart_round_trips_whatever_the_chunking": (  # noqa: E501
        "input", "hypothesis: multipart reports with random fields, notes and files, cut into "
        "random chunks", "round-trips exactly; display names never paths",
    ),
    "tests/reliability/test_parsing_properties.py::test_garbage_multipart_is_a_4xx": (
        "input", "hypothesis: random bytes as multipart", "a 4xx problem, never another error",
    ),
    "tests/reliability/test_parsing_properties.py::test_mangled_multipart_parts_are_a_4xx": (
        "input", "hypothesis: hostile part names, file names and preambles",
        "parsed or a 4xx problem",
    ),
    "tests/reliability/test_parsing_properties.py::test_any_json_is_parsed_or_a_4xx": (
        "input", "hypothesis: arbitrary JSON documents as a report", "parsed or a 4xx problem",
    ),
    "tests/reliability/test_parsing_properties.py::test_json_garbage_is_a_4xx": (
        "input", "hypothesis: random bytes as a JSON report", "a 4xx problem",
    ),
    "tests/reliability/test_parsing_properties.py::test_json_round_trips": (
        "input", "hypothesis: JSON reports, random chunking", "round-trips exactly",
    ),
    "tests/reliability/test_parsing_properties.py::test_batch_parsers_agree_with_the_json_reference": (  # noqa: E501
        "input", "hypothesis: session batches (arrays, other JSON, bytes), random chunking",
        "in-memory and streaming parsers agree with json.loads (found: an empty chunk ended "
        "the streaming parser; fixed)",
    ),
    "tests/reliability/test_parsing_properties.py::test_gzip_inflates_exactly_whatever_the_chunking": (  # noqa: E501
        "input", "hypothesis: gzip batches of 1-3 members, random chunking", "inflates exactly",
    ),
    "tests/reliability/test_parsing_properties.py::test_truncated_or_corrupt_gzip_is_a_4xx": (
        "input", "hypothesis: truncated or corrupted gzip", "400 `invalid_gzip`",
    ),
    "tests/reliability/test_load_shedding.py::test_in_flight_counts_per_route": (
        "load", "in-flight limiter unit", "per-route budgets, released on exit",
    ),
}  # fmt: skip


def _nodeid(case: ET.Element) -> str:
    classname = case.get("classname", "")
    return classname.replace(".", "/") + ".py::" + case.get("name", "")


def _outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "FAILED"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def _split(nodeid: str) -> tuple[str, str]:
    match = re.match(r"^(.*?)(?:\[(.*)\])?$", nodeid)
    assert match is not None
    return match.group(1), match.group(2) or ""


def _describe(base: str) -> tuple[str, str, str] | None:
    if base in STATIC:
        return STATIC[base]
    for key, value in REFERENCED.items():
        if base == key or base.startswith(key + "::"):
            return value
    return None


def _numbers(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def render(cases: list[tuple[str, str, float]], records: list[dict[str, Any]]) -> str:
    by_base: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for nodeid, outcome, seconds in cases:
        base, param = _split(nodeid)
        by_base[base].append((param, outcome, seconds))
    recorded: dict[str, dict[str, Any]] = {}
    numbers: dict[str, list[str]] = defaultdict(list)
    for row in records:
        base, param = _split(row["test"])
        recorded.setdefault(base, row)
        if row["numbers"]:
            label = f"{param}: " if param else ""
            numbers[base].append(label + _numbers(row["numbers"]))
    rows = []
    order = {"load": 0, "fault": 1, "input": 2, "attack": 3}
    for base, runs in by_base.items():
        if base in recorded:
            area, tried, held = (recorded[base][k] for k in ("area", "tried", "held"))
        else:
            described = _describe(base)
            if described is None:
                # a test module listed by path: one row per test function is too much
                key = next((k for k in REFERENCED if base.startswith(k)), None)
                if key is None:
                    continue
                described = REFERENCED[key]
            area, tried, held = described
        outcomes = sorted({o for _, o, _ in runs})
        params = [p for p, _, _ in runs if p]
        result = " / ".join(outcomes)
        if params and len(params) <= 3:
            result += f" ({', '.join(params)})"
        elif params:
            result += f" ({len(params)} cases)"
        seconds = sum(s for _, _, s in runs)
        rows.append((order[area], area, tried, held, "<br>".join(numbers.get(base, [])),
                     f"`{base}`", result, seconds))  # fmt: skip
    merged: dict[tuple[str, str, str], list[Any]] = {}
    for row in sorted(rows):  # referenced modules list several functions: one row per claim
        key = (row[1], row[2], row[3])
        if key in merged:
            merged[key][5] += f"<br>{row[5]}"
            merged[key][7] += row[7]
            if row[6] not in merged[key][6].split("; "):
                merged[key][6] += f"; {row[6]}"
        else:
            merged[key] = list(row)
    lines = [
        "| area | what was tried | what held | numbers | test | result | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, area, tried, held, nums, test, result, seconds in merged.values():
        cells = [area, tried, held, nums or "", test, result, f"{seconds:.1f}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
    machine += platform.python_version()
    return f"Last run: {stamp} on {machine}.\n\n" + "\n".join(lines) + "\n"


def write(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + table + text[end:], encoding="utf-8")


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results, junit = Path(tmp) / "results.jsonl", Path(tmp) / "junit.xml"
        env = {**os.environ, "FIELDREPORT_RELIABILITY_RESULTS": str(results)}
        # Referenced tests that exist in this checkout (a feature may not be merged yet).
        referenced = [t for t in REFERENCED if (ROOT / t.split("::", 1)[0]).exists()]
        targets = ["tests/reliability", *referenced]
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *targets, *argv]  # fmt: skip
        code = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
        if not junit.exists():
            return code or 1
        cases = [
            (_nodeid(c), _outcome(c), float(c.get("time", 0)))
            for c in ET.parse(junit).getroot().iter("testcase")
        ]
        records = [json.loads(line) for line in results.read_text().splitlines()] if (
            results.exists()
        ) else []  # fmt: skip
    write(render(cases, records))
    print(f"rewrote {DOC.relative_to(ROOT)} ({len(cases)} tests)")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
