"""Run wrk (Debian package `wrk`) against a loopback URL with a POST body, time-bounded.

The body is either fixed (any size: large bodies are read from a file by the Lua script) or a
template whose ``{id}`` marker is replaced by a fresh random 32-hex-digit id on every request
(for endpoints that must not see the same id twice, e.g. a peer's event ids).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

_LOOPBACK = ("127.", "localhost", "::1", "[::1]")
ID_MARKER = b"{id}"


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua(body_file: Path, headers: dict[str, str], templated: bool) -> str:
    lines = [
        'wrk.method = "POST"',
        f'local f = assert(io.open("{body_file}", "rb"))',
        "local body = f:read('*a')",
        "f:close()",
    ]
    for name, value in headers.items():
        lines.append(f"wrk.headers[{_lua_string(name.encode())}] = {_lua_string(value.encode())}")
    if not templated:
        lines.append("wrk.body = body")
    else:
        marker = _lua_string(ID_MARKER)
        lines += [
            f"local at = string.find(body, {marker}, 1, true)",
            "local head, tail = string.sub(body, 1, at - 1), string.sub(body, at + 4)",
            "math.randomseed(os.time() + math.floor(os.clock() * 1000000))",
            "local r = math.random",
            "request = function()",
            '  local id = string.format("%08x%08x%08x%08x", r(0, 0x7fffffff), r(0, 0x7fffffff),'
            " r(0, 0x7fffffff), r(0, 0x7fffffff))",
            "  return wrk.format(nil, nil, nil, head .. id .. tail)",
            "end",
        ]
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
    timeout: float = 10,
) -> dict[str, float]:
    """Requests/s (2xx only) and latency percentiles; non-2xx answers count as errors.

    A body containing ``{id}`` is sent with a fresh random id per request."""
    host = urlsplit(url).hostname or ""
    if not host.startswith(_LOOPBACK):
        raise SystemExit(f"refusing non-loopback target {host!r}")
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(_lua(body_file, headers or {}, ID_MARKER in body))
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{max(1, round(seconds))}s",
                "--timeout",
                f"{round(timeout)}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + timeout + 30,
        ).stdout
    return parse(out)


def parse(out: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return 0.0
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * scale, 2)

    errors = int(non2xx.group(1)) if non2xx else 0
    socket_errors = sum(int(g) for g in sock.groups()) if sock else 0
    return {
        "requests": total,
        "errors": errors,
        "socket_errors": socket_errors,
        "rps": round(rps * (1 - errors / total), 1) if total else 0.0,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
    }
