"""Profile a fieldreport server under load with py-spy and summarise where the time goes.

    python -m bench.profile [--endpoint reports] [--seconds 10]

Writes the collapsed stacks (``.bench/profile-<endpoint>.txt``, loadable in speedscope) and
prints the functions with the most samples: own time, and inclusive time in fieldreport code.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench import servers, wrk

ROOT = Path(__file__).resolve().parents[1]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install '.[bench]')")
    return found


def summarise(collapsed: Path, top: int = 12) -> dict[str, Any]:
    """Own-time and inclusive-time leaders from py-spy's collapsed (raw) output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "fieldreport/" in frame or "starlette" in frame or "multipart" in frame:
                incl[frame] += count
    if not total:
        return {"samples": 0, "own": [], "inclusive": []}
    return {
        "samples": total,
        "own": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)],
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in incl.most_common(top)],
    }


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (pkg/file.py:123)" without site-packages noise
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    path, _, _lineno = where.rpartition(":")
    return f"{name} ({path or where})"


def profile(
    group: servers.Group, url: str, body: bytes, headers: dict[str, str], seconds: float, out: Path
) -> dict[str, Any]:
    """Load ``url`` with wrk while py-spy samples the first server process."""
    result: dict[str, Any] = {}

    def load() -> None:
        result["load"] = wrk.run(url, seconds=seconds + 2, body=body, headers=headers)

    t = threading.Thread(target=load)
    t.start()
    subprocess.run(
        [py_spy(), "record", "--pid", str(group.pids[0]), "--duration", str(round(seconds)),
         "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
        check=True, capture_output=True,
    )  # fmt: skip
    t.join()
    result.update(summarise(out))
    return result


def main() -> None:
    from bench.suite import endpoints

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="reports")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    out = ROOT / ".bench" / f"profile-{args.endpoint}.txt"
    out.parent.mkdir(exist_ok=True)
    with (
        servers.scratch("profile") as work,
        servers.fieldreport(1, work, args.database_url, **servers.NO_SESSION_RATE_LIMITS) as fr,
    ):
        ep = next(e for e in endpoints(fr) if e.name == args.endpoint)
        res = profile(fr, fr.urls(ep.path)[0], ep.body, ep.headers, args.seconds, out)
    print(f"load: {res['load']}")
    print(f"samples: {res['samples']}")
    print("own time:")
    for f, pct in res["own"]:
        print(f"  {pct:5.1f}%  {f}")
    print("inclusive (fieldreport/starlette/multipart frames):")
    for f, pct in res["inclusive"]:
        print(f"  {pct:5.1f}%  {f}")


if __name__ == "__main__":
    main()
