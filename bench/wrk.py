"""Run wrk (Debian package `wrk`) against a loopback URL with a POST body, time-bounded."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

_LOOPBACK = ("127.", "localhost", "::1", "[::1]")


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(body: bytes, headers: dict[str, str]) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    return "\n".join(lines) + "\n"


def _lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def run(
    url: str,
    *,
    seconds: float,
    body: bytes,
    headers: dict[str, str] | None = None,
    connections: int = 64,
    threads: int = 1,
) -> dict[str, float]:
    """Requests/s and latency percentiles; non-2xx answers are counted as errors."""
    host = urlsplit(url).hostname or ""
    if not host.startswith(_LOOPBACK):
        raise SystemExit(f"refusing non-loopback target {host!r}")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_lua(body, headers or {}))
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return 0.0
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * scale, 2)

    errors = int(non2xx.group(1)) if non2xx else 0
    return {
        "requests": total,
        "errors": errors,
        "rps": round(rps * (1 - errors / total), 1) if total else 0.0,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
    }
