"""The peer: Bugsink (PyPI ``bugsink``), a self-hosted error tracker in Python.

Installed into its own virtual environment (``.bench/bugsink-venv``, by ``bench/run``) and set
up as its single-server guide describes: ``bugsink-create-conf --template=singleserver``
(SQLite for the data and for the Snappea task queue), ``bugsink-manage migrate`` for both
databases, gunicorn serving ``bugsink.wsgi`` and ``bugsink-runsnappea`` digesting events in
the background. Two deviations, both stated in BENCHMARKS.md: gunicorn binds 127.0.0.1
directly (no nginx in front) with 2 workers (one per core), and the per-project event quotas
are lifted so the benchmark measures throughput, not the rate limiter.

Events go to its Sentry-compatible store endpoint, ``POST /api/<project>/store/`` with an
``X-Sentry-Auth`` header, each with a fresh ``event_id``.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.util import free_port

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench" / "bugsink-venv"
VERSION = "2.6.1"

QUOTAS = """
# fieldreport benchmark: lift the event quotas so the run measures throughput, not the limiter.
BUGSINK.update({name: 10**12 for name in (
    "MAX_EVENTS_PER_PROJECT_PER_5_MINUTES", "MAX_EVENTS_PER_PROJECT_PER_HOUR",
    "MAX_EVENTS_PER_PROJECT_PER_MONTH", "MAX_EVENTS_PER_5_MINUTES", "MAX_EVENTS_PER_HOUR",
    "MAX_EVENTS_PER_MONTH")})
"""

CREATE_PROJECT = """
from teams.models import Team
from projects.models import Project
team = Team.objects.create(name="bench")
project = Project.objects.create(name="bench", team=team)
print("PROJECT", project.id, project.sentry_key.hex)
"""


def installed() -> bool:
    return (VENV / "bin" / "gunicorn").exists() and (VENV / "bin" / "bugsink-manage").exists()


def version() -> str:
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m;"
         "print(m.version('bugsink'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


@dataclass
class Bugsink:
    url: str
    project_id: int
    sentry_key: str
    base_dir: Path
    gunicorn: subprocess.Popen[bytes]
    snappea: subprocess.Popen[bytes]
    workers: int

    @property
    def store_url(self) -> str:
        return f"{self.url}/api/{self.project_id}/store/"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=bench/1.0, "
            f"sentry_key={self.sentry_key}",
        }

    def digested(self) -> int:
        """Events Bugsink has digested (stored as events) so far."""
        with sqlite3.connect(self.base_dir / "db.sqlite3", timeout=30) as db:
            return int(db.execute("SELECT COUNT(*) FROM events_event").fetchone()[0])


def _env(base_dir: Path) -> dict[str, str]:
    return {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": str(base_dir),
        "DJANGO_SETTINGS_MODULE": "bugsink_conf",
        "HOME": str(base_dir),
    }


@contextmanager
def running(base_dir: Path, workers: int = 2) -> Iterator[Bugsink]:
    """A configured, migrated Bugsink with one project, serving on a free loopback port."""
    if not installed():
        raise RuntimeError(f"Bugsink is not installed in {VENV} (bench/run installs it)")
    base_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = _env(base_dir)
    bin_ = VENV / "bin"

    def manage(*args: str) -> str:
        return subprocess.run(
            [str(bin_ / "bugsink-manage"), *args],
            env=env, cwd=base_dir, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    subprocess.run(
        [str(bin_ / "bugsink-create-conf"), "--template=singleserver", f"--host=127.0.0.1:{port}",
         f"--base-dir={base_dir}", f"--output-file={base_dir / 'bugsink_conf.py'}"],
        env=env, cwd=base_dir, check=True, capture_output=True,
    )  # fmt: skip
    with (base_dir / "bugsink_conf.py").open("a") as conf:
        conf.write(QUOTAS)
    manage("migrate", "--verbosity=0")
    manage("migrate", "snappea", "--database=snappea", "--verbosity=0")
    line = next(
        ln for ln in manage("shell", "-c", CREATE_PROJECT).splitlines() if ln.startswith("PROJECT")
    )
    _, project_id, key = line.split()
    log = (base_dir / "gunicorn.log").open("wb")
    gunicorn = subprocess.Popen(
        [str(bin_ / "gunicorn"), f"--bind=127.0.0.1:{port}", f"--workers={workers}",
         "--timeout=30", "--access-logfile=/dev/null",
         "--control-socket", str(base_dir / "gunicorn.ctl"), "bugsink.wsgi"],
        env=env, cwd=base_dir, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    snappea = subprocess.Popen(
        [str(bin_ / "bugsink-runsnappea")],
        env=env, cwd=base_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    peer = Bugsink(
        f"http://127.0.0.1:{port}", int(project_id), key, base_dir, gunicorn, snappea, workers
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if gunicorn.poll() is not None:
                raise RuntimeError(
                    "Bugsink's gunicorn exited:\n" + (base_dir / "gunicorn.log").read_text()
                )
            try:
                httpx.get(f"{peer.url}/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield peer
    finally:
        for proc in (gunicorn, snappea):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (gunicorn, snappea):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
