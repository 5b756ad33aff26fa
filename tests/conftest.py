"""Shared fixtures: real SQLite and PostgreSQL databases, local and S3 blobs, a real server.

``backend`` runs a test twice: SQLite + local blobs, and PostgreSQL + S3 (SeaweedFS).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from fieldreport.app import Service, create_app
from fieldreport.settings import Settings
from fieldreport.state import AppState, open_state
from fieldreport.storage.db import Database
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.projects import NewProject, create_project
from tests.support import pg
from tests.support.fixtures_s3 import s3_server  # noqa: F401  (re-exported fixture)
from tests.support.seaweed import S3Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (fast) and drops its clone."""
    name, url = asyncio.run(pg.create_database())

    async def migrate() -> None:
        db = Database(url)
        await upgrade(db)
        await db.dispose()

    asyncio.run(migrate())
    yield name
    asyncio.run(pg.drop_database(name))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name, url = asyncio.run(pg.create_database(template=pg_template))
    yield url
    asyncio.run(pg.drop_database(name))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind (storage tests)."""
    if db_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'fieldreport.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite+local", "postgresql+s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "public_url": "http://fieldreport.test",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for the `settings` fixture."""
    return {}


@pytest.fixture
def settings(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    settings_overrides: dict[str, object],
) -> Settings:
    overrides = dict(settings_overrides)
    if backend == "postgresql+s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        overrides.setdefault("database_url", request.getfixturevalue("pg_url"))
        overrides.setdefault("blob_url", f"s3://{s3.bucket}/t{uuid.uuid4().hex[:16]}")
        overrides.setdefault("s3_endpoint", s3.endpoint)
        overrides.setdefault("s3_region", s3.region)
        overrides.setdefault("s3_access_key_id", s3.access_key_id)
        overrides.setdefault("s3_secret_access_key", s3.secret_access_key)
    return make_settings(tmp_path, **overrides)


@pytest.fixture
async def state(settings: Settings) -> AsyncIterator[AppState]:
    current = await open_state(settings)
    yield current
    await current.close()


@pytest.fixture
async def project(state: AppState) -> NewProject:
    async with state.db.write() as conn:
        return await create_project(conn, "acme")


@dataclass
class RunningServer:
    url: str
    state: AppState
    server: uvicorn.Server


@pytest.fixture
def services() -> list[Service]:
    """Background services the test server starts (override to add the worker...)."""
    return []


@pytest.fixture
async def server(
    settings: Settings, state: AppState, services: list[Service]
) -> AsyncIterator[RunningServer]:
    """The real app on uvicorn on a free loopback port, in the test's event loop."""
    port = free_port()
    app = create_app(settings, state=state, services=services)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    srv = uvicorn.Server(config)
    srv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(srv.serve())
    for _ in range(500):
        if srv.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield RunningServer(f"http://127.0.0.1:{port}", state, srv)
    srv.should_exit = True
    await asyncio.wait_for(task, 15)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c
