"""Is the server waiting for a serialized step, or for a CPU? Per-thread scheduler time under load:

    python -m bench.threadsched [--endpoint reports] [--connections 16,64] [--seconds 6]
                                [--database-url URL] [--src OTHER/src]

For each thread of one ``fieldreport serve`` process, ``/proc/<pid>/task/<tid>/schedstat``
read around a wrk load gives the share of wall time it ran on a CPU, the share it was ready
but waited in the run queue (no CPU free for it) and the rest (asleep: waiting for I/O, a
lock, the GIL or work). The machine's own ``/proc/stat`` says how busy both cores were.

A server limited by one serialized step (a lock, a group commit) shows its loop thread
mostly asleep while CPUs are idle; a server short of CPU shows its loop thread waiting in
the run queue while the machine has no idle time. ``requests/s x loop CPU per request``
alone cannot tell them apart. Loopback only, bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

from bench import servers, wrk
from bench.suite import endpoints

_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _threads(pid: int) -> dict[str, tuple[int, int]]:
    """``tid -> (ns on a CPU, ns waiting in the run queue)`` of every thread of ``pid``."""
    out: dict[str, tuple[int, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                ran, waited, _ = (int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        out[tid] = (ran, waited)
    return out


def _machine() -> list[int]:
    with open("/proc/stat") as fh:
        return [int(x) for x in fh.readline().split()[1:9]]


def sample(pid: int, url: str, body: bytes, headers: dict[str, str], conns: int, seconds: float
           ) -> dict[str, object]:  # fmt: skip
    """Run wrk for ``seconds``; read the counters over its middle (1 s in, 1 s before its end)."""
    result: dict[str, float] = {}

    def load() -> None:
        result.update(wrk.run(url, seconds=seconds, body=body, headers=headers, connections=conns))

    runner = threading.Thread(target=load)
    runner.start()
    time.sleep(1.0)
    before, cpu_before, began = _threads(pid), _machine(), time.monotonic_ns()
    time.sleep(max(1.0, seconds - 2.0))
    after, cpu_after, ended = _threads(pid), _machine(), time.monotonic_ns()
    runner.join()
    wall = ended - began
    loop_ran = loop_waited = other_ran = other_waited = 0
    for tid, (ran, waited) in after.items():
        ran0, waited0 = before.get(tid, (0, 0))
        if tid == str(pid):
            loop_ran, loop_waited = ran - ran0, waited - waited0
        else:
            other_ran += ran - ran0
            other_waited += waited - waited0
    ticks = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
    total = sum(ticks) or 1
    machine = {name: round(200 * t / total) for name, t in zip(_STAT_FIELDS, ticks, strict=True)}
    return {
        "rps": result.get("rps", 0.0),
        "p50_ms": result.get("p50_ms", 0.0),
        "loop_on_cpu": round(100 * loop_ran / wall),
        "loop_run_queue": round(100 * loop_waited / wall),
        "loop_asleep": round(100 * (wall - loop_ran - loop_waited) / wall),
        "other_threads_on_cpu": round(100 * other_ran / wall),
        "other_threads_run_queue": round(100 * other_waited / wall),
        "machine_percent_of_2_cores": machine,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="reports")
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--src", type=Path, default=servers.SRC, help="the build to run")
    args = parser.parse_args()
    with (
        servers.scratch("threadsched") as work,
        servers.fieldreport(
            1, work, args.database_url, src=args.src.resolve(), **servers.NO_SESSION_RATE_LIMITS
        ) as fr,
    ):
        ep = next(e for e in endpoints(fr) if e.name == args.endpoint)
        url = fr.urls(ep.path)[0]
        wrk.run(url, seconds=1, body=ep.body, headers=ep.headers)  # warm-up
        for conns in (int(c) for c in args.connections.split(",")):
            res = sample(fr.pids[0], url, ep.body, ep.headers, conns, args.seconds)
            m = res["machine_percent_of_2_cores"]
            assert isinstance(m, dict)
            print(
                f"{ep.name} @{conns}: {res['rps']:.0f}/s p50 {res['p50_ms']} ms | loop thread: "
                f"on a CPU {res['loop_on_cpu']}%, waiting for one {res['loop_run_queue']}%, "
                f"asleep {res['loop_asleep']}% | other threads: on a CPU "
                f"{res['other_threads_on_cpu']}%, waiting {res['other_threads_run_queue']}% "
                f"| machine (% of 2 cores): user {m['user']} system {m['system']} "
                f"idle {m['idle']} iowait {m['iowait']} steal {m['steal']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
