"""Real HTTP receivers on loopback for delivery tests (aiohttp servers in the test's loop)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    content_type: str


@dataclass
class Receiver:
    """Answers ``fail_first`` requests with ``fail_status``, then 200; or hangs when told."""

    fail_first: int = 0
    fail_status: int = 503
    fail_headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Received(dict(request.headers), body, request.headers.get("Content-Type", ""))
        )
        if self.hang:
            await asyncio.sleep(3600)
        if len(self.requests) <= self.fail_first:
            return web.Response(status=self.fail_status, text="not now", headers=self.fail_headers)
        return web.Response(status=self.status, text="ok")


@dataclass
class SlowReceiver(Receiver):
    """Takes ``delay`` seconds over each request; ``peak``: the most it had at once."""

    delay: float = 0.05
    active: int = 0
    peak: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(self.delay)
        self.active -= 1
        return await super().handle(request)


@contextlib.asynccontextmanager
async def serve_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def down_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/hook"


@dataclass
class PhpReceiver:
    url: str
    root: Path

    @property
    def output(self) -> Path:
        return self.root / "output"


@contextlib.contextmanager
def php_receiver(tmp: Path) -> Iterator[PhpReceiver]:
    """Seed 000's sample script, unchanged, under ``php -S`` on loopback."""
    php = shutil.which("php")
    if php is None:
        raise RuntimeError("php is not installed (apt-get install php-cli; scripts/test does)")
    root = tmp / "php"
    (root / "output").mkdir(parents=True)
    shutil.copy(FIXTURES / "seed000_receiver.php", root / "receiver.php")
    port = free_port()
    proc = subprocess.Popen(
        [php, "-S", f"127.0.0.1:{port}", "-t", str(root)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PHP_CLI_SERVER_WORKERS": "1"},
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("php -S did not start")
            time.sleep(0.05)
        yield PhpReceiver(f"http://127.0.0.1:{port}/receiver.php", root)
    finally:
        proc.terminate()
        proc.wait(5)
