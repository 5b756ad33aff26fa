"""A private, throwaway PostgreSQL instance that a test may stop, kill and restart.

The machine's shared cluster (127.0.0.1:5432) serves everyone's tests, so fault tests
never touch it. :func:`private_postgres` runs Debian's ``initdb`` and ``pg_ctl`` on a
temporary directory and a free loopback port instead (as the ``postgres`` user when we
are root, because ``initdb`` refuses to run as root), with trust authentication on
127.0.0.1 only, and removes everything on exit.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(f"PostgreSQL's {name} not found (apt-get install postgresql)")


def _version(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def available() -> bool:
    try:
        _bin("initdb")
        _bin("pg_ctl")
    except RuntimeError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    def __init__(self, root: Path, port: int, user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.user = user  # the OS user running the server (None: ourselves)
        self.log = root / "postgres.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        full = ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)
        return subprocess.run(full, check=check, capture_output=True, timeout=60)

    def initdb(self) -> None:
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=200 -c shared_buffers=16MB"
        )
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean), or ``immediate`` (like a crash: recovery on start)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def is_running(self) -> bool:
        status = self._run(_bin("pg_ctl"), "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def create_database(self, name: str) -> str:
        self._run(_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.url(name)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Start a private PostgreSQL on a free loopback port; stop and delete it on exit."""
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
    root = Path(tempfile.mkdtemp(prefix="fieldreport-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    server = PrivatePostgres(root, _free_port(), user)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.stop("immediate")
        for _ in range(50):
            if not server.is_running():
                break
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
