"""Server processes the benchmarks run side by side: fieldreport and the bare ceiling.

Every server listens on 127.0.0.1 only. ``n`` processes of one kind listen on ``n`` ports (the
load generator splits its connections between them, like a load balancer would), so the
ceiling and fieldreport are always measured with the same process count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bench.util import free_port

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PG_ADMIN_URL = os.environ.get(
    "FIELDREPORT_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# Session ingest has per-key rate limits; the benchmarks lift them (stated in BENCHMARKS.md),
# or a load generator's batches would be refused with 429 instead of measured.
NO_SESSION_RATE_LIMITS = {
    "FIELDREPORT_SESSION_RATE_SESSIONS": "0",
    "FIELDREPORT_SESSION_RATE_BYTES": "0",
}


def child_env(src: Path = SRC, **extra: str) -> dict[str, str]:
    """``src`` (this checkout's, unless another build is compared) first on PYTHONPATH, no
    FIELDREPORT_* settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDREPORT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(extra)
    return env


@dataclass
class Group:
    """``n`` processes of one server, one port each."""

    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def urls(self, path: str) -> list[str]:
        return [f"http://127.0.0.1:{p}{path}" for p in self.ports]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited early:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@contextmanager
def bare(n: int, workdir: Path) -> Iterator[Group]:
    """The ceiling: Starlette on uvicorn (uvloop, httptools), an endpoint that only reads the
    body and answers 200 with a small JSON body. Path: ``/ingest``."""
    with _starlette("bare", "bench.apps.bare:starlette_app", n, workdir) as group:
        yield group


@contextmanager
def floor(workdir: Path) -> Iterator[Group]:
    """The floor (``bench/apps/floor.py``): the ceiling's stack reading the body the same way,
    then only the checks and the durable write an ingest endpoint cannot skip. Paths:
    ``/reports``, ``/sessions``. One process; its screenshots go under ``workdir``."""
    data = workdir / "floor-data"
    data.mkdir(parents=True, exist_ok=True)
    env = {"FIELDREPORT_FLOOR_DATA_DIR": str(data)}
    with _starlette("floor", "bench.apps.floor:app", 1, workdir, env) as group:
        yield group


@contextmanager
def _starlette(
    name: str, app: str, n: int, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[Group]:
    """``n`` uvicorn processes (uvloop, httptools, no access log) serving ``app``."""
    group = Group(name)
    try:
        for _ in range(n):
            port = free_port()
            log = workdir / f"{name}-{port}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", app,
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                     "--loop", "uvloop", "--http", "httptools", "--no-access-log"],
                    env=child_env(**(env or {})), stdout=out, stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )  # fmt: skip
            group.procs.append(proc)
            group.ports.append(port)
            group.logs.append(log)
            _wait_ready(proc, f"http://127.0.0.1:{port}/", log)
        yield group
    finally:
        group.stop()


@contextmanager
def app_bare(workdir: Path) -> Iterator[Group]:
    """The bare endpoint mounted inside fieldreport's own app (``bench.apps.fullstack``): the
    same middleware as the real endpoints (request ids, metrics, error handling). Path:
    ``/bench/bare``."""
    group = Group("app-bare")
    data_dir = workdir / "app-bare-data"
    try:
        port = free_port()
        log = workdir / f"app-bare-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bench.apps.fullstack:app",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                 "--loop", "uvloop", "--http", "httptools", "--no-access-log"],
                env=child_env(FIELDREPORT_DATA_DIR=str(data_dir), FIELDREPORT_LOG_LEVEL="warning"),
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        group.procs.append(proc)
        group.ports.append(port)
        group.logs.append(log)
        _wait_ready(proc, f"http://127.0.0.1:{port}/healthz", log)
        yield group
    finally:
        group.stop()


@dataclass
class Fieldreport(Group):
    settings: dict[str, str] = field(default_factory=dict)
    src: Path = SRC
    public_key: str = ""
    secret_key: str = ""

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "fieldreport", *args],
            env=child_env(self.src, **self.settings),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout


@contextmanager
def fieldreport(
    n: int, workdir: Path, database_url: str | None = None, *, src: Path = SRC, **extra: str
) -> Iterator[Fieldreport]:
    """``n`` ``fieldreport serve`` processes sharing one database and blob directory, plus a
    project named ``bench`` (its keys on the returned group). ``src``: the build to run
    (another revision's ``src/`` for before/after comparisons)."""
    data_dir = workdir / "fieldreport-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "FIELDREPORT_DATA_DIR": str(data_dir),
        "FIELDREPORT_HOST": "127.0.0.1",
        "FIELDREPORT_LOG_LEVEL": "warning",
        **({"FIELDREPORT_DATABASE_URL": database_url} if database_url else {}),
        **extra,
    }
    group = Fieldreport("fieldreport", settings=settings, src=src)
    try:
        created = json.loads(group.cli("project", "create", "bench", "--json"))
        group.public_key = created["public_key"]
        group.secret_key = created["secret_key"]
        for _ in range(n):
            port = free_port()
            log = workdir / f"fieldreport-{port}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "fieldreport", "serve"],
                    env=child_env(src, **settings, FIELDREPORT_PORT=str(port)),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            group.procs.append(proc)
            group.ports.append(port)
            group.logs.append(log)
            _wait_ready(proc, f"http://127.0.0.1:{port}/healthz", log)
        yield group
    finally:
        group.stop()


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available() -> bool:
    try:
        asyncio.run(_admin("SELECT 1"))
        return True
    except Exception:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL server; yields its URL."""
    name = f"fieldreport_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


#: Scratch directories whose removal waits for :func:`remove_kept_scratch` (see
#: :func:`keep_scratch_until_the_end`).
_KEPT: list[Path] | None = None
#: Below this much free space a scratch directory is removed at once all the same.
_KEEP_FREE_BYTES = 16 << 30


def keep_scratch_until_the_end() -> None:
    """Keep scratch directories on disk until :func:`remove_kept_scratch` (the suite does,
    at its end). This disk's ext4 has no journal, and without one ext4 does not reuse an
    inode freed in the last minute(s): each file created then scans past every recently
    freed one, and creating a report's file cost 31 µs in a quiet directory but 400-865 µs
    right after 3000 deletions. Removing a case's thousands of report files right before
    the next case made that case pay for them."""
    global _KEPT
    if _KEPT is None:
        _KEPT = []


def remove_kept_scratch() -> None:
    global _KEPT
    kept, _KEPT = _KEPT or [], None
    for path in kept:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def scratch(prefix: str, base: Path | None = None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"fieldreport-bench-{prefix}-", dir=base))
    try:
        yield path
    finally:
        # tmpfs scratch (a base given: /dev/shm) holds memory: always removed at once
        if _KEPT is not None and base is None and shutil.disk_usage(path).free > _KEEP_FREE_BYTES:
            _KEPT.append(path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def revision_src(rev: str) -> Path:
    """The ``src/`` tree of git revision ``rev`` of this repository, extracted once under
    ``.bench/`` (for running an earlier build beside this one)."""
    target = ROOT / ".bench" / f"rev-{rev}"
    if not (target / "src" / "fieldreport").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, "src"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"
