"""Delivery throughput and latency, measured side by side in one run.

    .venv/bin/python -m bench.delivery [--reports 1000] [--rounds 3] [--concurrency 64]
                                       [--database-url postgresql://...] [--src OTHER/src]

Under callgrind (``valgrind --tool=callgrind --separate-threads=yes python -m bench.delivery
--callgrind --rounds 1 --latency-reports 0``) the counters are zeroed before each worker round
and each bare loop and dumped after them: instructions per delivery and per post, every thread
of this process, repeatable whatever else the machine runs (the receiver is not counted).

``--src`` runs another build's ``fieldreport`` (say /work/main/src) under this benchmark: run
it alternately with and without to compare two builds in the same minutes.

1. Throughput: N accepted reports (20 KB screenshot, notes) are pushed as multipart to a
   local receiver (a separate process) by the real worker (claim with leases, load from the
   database and blob store, send, record every attempt); then the same payloads are posted
   by a bare aiohttp loop with the same concurrency (no database at all): the ceiling.
   Prints both rates and the ratio (target: >= 0.5), the CPU time of this process per
   delivery and per post (the worker runs in it: steadier than rates on a shared machine),
   and checks every attempt was recorded. The loop thread's share of that CPU is printed
   too (the rest is the batch writer's and the file reads' threads), and the process's
   context switches per delivery and per post (each hand-off between the loop and the
   writer thread, and each wait for the GIL, is one).
   The process sets up its garbage collector once the state is open as ``fieldreport
   serve`` and ``fieldreport worker`` do after start-up (``gc_tuning.settle_after_startup``:
   start-up objects frozen out of the collector's sight, young-generation threshold 10,000):
   without the freeze every full collection walks the ~130k objects of the imported modules
   (~50-85 ms each here, about one per 1000 deliveries), and with Python's threshold of 700
   the worker spends ~5% of its instructions in young collections, costs that the
   production processes do not pay. Both sides run after it.
2. Latency on an idle system: the server with its in-process worker; reports are submitted
   one at a time over HTTP; accepted (201 received) -> arrived at the receiver, p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import aiohttp
import httpx
import sqlalchemy as sa
import uvicorn

from bench.measure import cpu_seconds
from bench.servers import child_env
from bench.util import free_port, wait_http
from fieldreport.app import create_app
from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.formats.multipart import multipart_form
from fieldreport.delivery.loader import load_bundle
from fieldreport.delivery.worker import Worker, worker_service
from fieldreport.gc_tuning import settle_after_startup
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.deliveries import enqueue_report, list_deliveries
from fieldreport.storage.destinations import NewDestination, add_destination
from fieldreport.storage.projects import NewProject, create_project
from fieldreport.storage.reports import ReportFields, StoredFile, insert_report
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.delivery import deliveries, delivery_attempts


def screenshot() -> bytes:
    """A ~20 KB PNG (random pixels do not compress)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(1)
    img = Image.new("RGB", (96, 70))
    img.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                 for _ in range(96 * 70)])  # fmt: skip
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


async def seed_reports(state: AppState, project: NewProject, n: int) -> None:
    data = screenshot()
    key = f"bench/{uuid.uuid4()}/screenshot.png"
    await state.blobs.put_bytes(key, data)
    stored = StoredFile("screenshot", 0, "screenshot.png", "image/png", len(data), "0" * 64, key)
    fields = ReportFields(
        subject="Checkout broken",
        sendercomment="Nothing happens when I click pay. " * 5,
        senderemail="user@example.com",
        additionalinfo='{"plan": "pro"}',
        browser="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        ipaddress="203.0.113.7",
        referer="https://app.example.com/checkout",
        notelist=["first note", "second note"],
    )
    for start in range(0, n, 500):
        async with state.db.write() as conn:
            for _ in range(min(500, n - start)):
                report_id = str(uuid.uuid4())
                now = utcnow()
                await insert_report(conn, report_id=report_id, project_id=project.project.id,
                                    created_at=now, fields=fields, files=[stored])  # fmt: skip
                await enqueue_report(conn, report_id=report_id, project_id=project.project.id,
                                     now=now)  # fmt: skip


def own_cpu() -> float:
    """CPU seconds of this process (every thread: the worker, the SQLite thread, the loop)."""
    return cpu_seconds([os.getpid()])


CALLGRIND = False


def callgrind(command: str) -> int:
    """Under callgrind (``--callgrind``): zero the counters (``-z``), or dump them (``-d``) and
    return the instructions counted since, in every thread; 0 otherwise."""
    if not CALLGRIND:
        return 0
    before = set(Path.cwd().glob(f"callgrind.out.{os.getpid()}*"))
    subprocess.run(["callgrind_control", command, str(os.getpid())], check=True,
                   capture_output=True)  # fmt: skip
    total = 0
    for dump in set(Path.cwd().glob(f"callgrind.out.{os.getpid()}*")) - before:
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    return total


def switches() -> int:
    """Context switches of this process so far (voluntary: a thread waited, on a lock, the
    GIL or I/O; involuntary: the scheduler took its core), every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw + usage.ru_nivcsw


def loop_cpu() -> float:
    """CPU seconds of the calling thread (the event loop's)."""
    return time.thread_time()


class Side(NamedTuple):
    """One round of one side: its rate, this process's CPU µs and context switches per
    delivery (or post), and the loop thread's CPU µs (the worker's only)."""

    rate: float
    cpu: float
    switches: float
    loop: float = 0.0


async def bare_loop(url: str, bundles: list[ReportBundle], concurrency: int) -> Side:
    """The ceiling: the same multipart payloads, posted by aiohttp alone."""
    queue = list(bundles)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_worker() -> None:
            while queue:
                form = multipart_form(queue.pop(), "tok")  # rendered as the worker does
                headers = {"Content-Type": form.content_type}
                async with session.post(url, data=form.data, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200

        callgrind("-z")
        started, cpu, switched = time.perf_counter(), own_cpu(), switches()
        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, own_cpu() - cpu
        switched = switches() - switched
        if CALLGRIND:
            print(f"  callgrind: bare loop {callgrind('-d') / len(bundles):,.0f} instructions/post")
        n = len(bundles)
        return Side(n / elapsed, cpu * 1e6 / n, switched / n)


async def worker_round(
    state: AppState, sink: str, reports: int, concurrency: int
) -> tuple[Side, list[ReportBundle]]:
    """The worker's deliveries/s, CPU µs per delivery (this process: the worker runs in it;
    the completion poll, one count query every 20 ms, is included) and the loop thread's."""
    async with state.db.write() as conn:
        project = await create_project(conn, f"bench-{uuid.uuid4().hex[:6]}")
        await add_destination(conn, project.project.id, NewDestination(
            url=sink, format="multipart", token="tok", retry_schedule=[0, 5],
            timeout=15), backup=False)  # fmt: skip
    await seed_reports(state, project, reports)
    worker = Worker(state, name=f"bench-{uuid.uuid4().hex[:4]}")
    worker.concurrency = concurrency
    worker.per_destination = concurrency
    callgrind("-z")
    started, cpu, loop, switched = time.perf_counter(), own_cpu(), loop_cpu(), switches()
    task = asyncio.create_task(worker.run())
    while True:
        if worker.sent < reports:
            # Not all attempted yet (the worker's own count, free to read): asking the
            # database now would only charge the count query's CPU to the worker.
            await asyncio.sleep(0.01)
            continue
        async with state.db.read() as conn:
            done = (await conn.execute(
                sa.select(sa.func.count()).select_from(deliveries).where(
                    (deliveries.c.project_id == project.project.id)
                    & (deliveries.c.status == "delivered"))
            )).scalar_one()  # fmt: skip
        if done >= reports:
            break
        await asyncio.sleep(0.02)
    elapsed, cpu, loop = time.perf_counter() - started, own_cpu() - cpu, loop_cpu() - loop
    switched = switches() - switched
    if CALLGRIND:
        print(f"  callgrind: worker {callgrind('-d') / reports:,.0f} instructions/delivery")
    worker.request_stop(5)
    await task
    async with state.db.read() as conn:
        recorded = (await conn.execute(
            sa.select(delivery_attempts.c.duration_ms, delivery_attempts.c.status_code)
            .select_from(delivery_attempts.join(
                deliveries, deliveries.c.id == delivery_attempts.c.delivery_id))
            .where((deliveries.c.project_id == project.project.id)
                   & (delivery_attempts.c.outcome == "delivered"))
        )).all()  # fmt: skip
        ids = [d.report_id for d in await list_deliveries(
            conn, project_id=project.project.id, limit=reports)]  # fmt: skip
    assert len(recorded) >= reports, f"only {len(recorded)} attempts recorded"
    assert all(r.duration_ms is not None and r.status_code == 200 for r in recorded)
    bundles = [b for b in [await load_bundle(state, i) for i in ids] if b is not None]
    side = Side(reports / elapsed, cpu * 1e6 / reports, switched / reports, loop * 1e6 / reports)
    return side, bundles


async def throughput(
    settings: Settings, sink: str, reports: int, concurrency: int, rounds: int
) -> None:
    """Alternate the worker and the bare loop, ``rounds`` times, so that noise from the
    machine hits both alike; report the medians."""
    state = await open_state(settings)
    settle_after_startup()  # as serve and worker do after start-up (see the docstring)
    worker_sides: list[Side] = []
    bare_sides: list[Side] = []
    try:
        for _ in range(rounds):
            side, bundles = await worker_round(state, sink, reports, concurrency)
            worker_sides.append(side)
            bare_sides.append(await bare_loop(sink, bundles, concurrency))
        ours, ceiling = [s.rate for s in worker_sides], [s.rate for s in bare_sides]
        ours_cpu, ceiling_cpu = [s.cpu for s in worker_sides], [s.cpu for s in bare_sides]
        ours_loop = [s.loop for s in worker_sides]
        w, c = statistics.median(ours), statistics.median(ceiling)
        print(f"throughput: {reports} reports x {rounds} rounds, concurrency {concurrency}, "
              f"{state.db.dialect}, 20 KB screenshot, multipart")  # fmt: skip
        print(f"  worker (claim, load, send, record every attempt): {w:8.0f} deliveries/s"
              f"  (rounds: {', '.join(f'{x:.0f}' for x in ours)})")  # fmt: skip
        print(f"  bare aiohttp loop, same payloads, no database:     {c:8.0f} posts/s"
              f"  (rounds: {', '.join(f'{x:.0f}' for x in ceiling)})")  # fmt: skip
        print(f"  ratio of medians: {w / c:.2f}  (target >= 0.50)")
        wc, cc = statistics.median(ours_cpu), statistics.median(ceiling_cpu)
        print(f"  CPU per delivery: worker {wc:.0f} µs, bare loop {cc:.0f} µs, ratio {cc / wc:.2f}"
              f"  (rounds: {', '.join(f'{x:.0f}' for x in ours_cpu)} / "
              f"{', '.join(f'{x:.0f}' for x in ceiling_cpu)})")  # fmt: skip
        print(f"  worker's loop thread per delivery: {statistics.median(ours_loop):.0f} µs"
              f"  (rounds: {', '.join(f'{x:.0f}' for x in ours_loop)})")  # fmt: skip
        ws, cs = [s.switches for s in worker_sides], [s.switches for s in bare_sides]
        print(f"  context switches per delivery: worker {statistics.median(ws):.2f}, bare loop"
              f" {statistics.median(cs):.2f}  (rounds: {', '.join(f'{x:.2f}' for x in ws)} / "
              f"{', '.join(f'{x:.2f}' for x in cs)})")  # fmt: skip
    finally:
        await state.close()


async def latency(settings: Settings, sink: str, count: int) -> None:
    state = await open_state(settings)
    port = free_port()
    app = create_app(settings, state=state, services=[worker_service()])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with state.db.write() as conn:
            project = await create_project(conn, f"lat-{uuid.uuid4().hex[:6]}")
            await add_destination(conn, project.project.id, NewDestination(
                url=sink, format="multipart", retry_schedule=[0, 5], timeout=15),
                backup=False)  # fmt: skip
        accepted: dict[str, float] = {}
        png = screenshot()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(count):
                resp = await client.post(
                    "/api/v1/reports",
                    data={"key": project.public_key, "subject": f"latency {i}"},
                    files={"file": ("s.png", png, "image/png")},
                )
                assert resp.status_code == 201, resp.text
                accepted[resp.json()["reportid"]] = time.time()
                await asyncio.sleep(0.05)  # idle: one report at a time
            await asyncio.sleep(1.0)
            stats = httpx.get(sink.replace("/push", "/stats")).json()["arrivals"]
        lat = sorted((stats[r] - t) * 1000 for r, t in accepted.items() if r in stats)
        assert len(lat) == count, f"{count - len(lat)} reports not delivered"
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"latency accepted -> delivered, idle ({count} reports): "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
    finally:
        server.should_exit = True
        await task
        await state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-reports", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--src", type=Path, default=None, help="another build's src/ to run")
    parser.add_argument("--callgrind", action="store_true", help="under callgrind: count")
    args = parser.parse_args()
    global CALLGRIND
    CALLGRIND = args.callgrind
    if args.src is not None:  # the same benchmark on that build: run again with it first
        argv = [a for i, a in enumerate(sys.argv) if a != "--src" and sys.argv[i - 1] != "--src"]
        argv = [a for a in argv if not a.startswith("--src=")]
        env = child_env(args.src.resolve())
        os.execve(sys.executable, [sys.executable, "-m", "bench.delivery", *argv[1:]], env)
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.apps.sink", str(port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/stats")
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp), database_url=args.database_url,
                allow_private_destinations=True, log_level="warning",
            )  # fmt: skip
            sink_url = f"http://127.0.0.1:{port}/push"
            import uvloop

            uvloop.run(throughput(settings, sink_url, args.reports, args.concurrency, args.rounds))
            if args.latency_reports:
                httpx.post(f"http://127.0.0.1:{port}/reset")
                uvloop.run(latency(settings, sink_url, args.latency_reports))
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
