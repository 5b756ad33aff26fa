"""Fixtures for the reliability suite: results recording, a private PostgreSQL, processes.

Each test describes what it tried and what held with ``record(...)``. When
``FIELDREPORT_RELIABILITY_RESULTS`` names a file (``python -m tests.reliability.report``
sets it), the records are appended to it as JSON lines and become the table in
``docs/reliability.md``; otherwise ``record`` only checks its arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import pg_private
from tests.support.proc import fieldreport_cmd, subprocess_env

RESULTS_ENV = "FIELDREPORT_RELIABILITY_RESULTS"
Record = Callable[..., None]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    def write(area: str, tried: str, held: str, **numbers: Any) -> None:
        assert area in ("load", "fault", "input", "attack")
        path = os.environ.get(RESULTS_ENV)
        if not path:
            return
        row = {"test": request.node.nodeid, "area": area, "tried": tried, "held": held,
               "numbers": numbers}  # fmt: skip
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")

    return write


@pytest.fixture(scope="module")
def private_pg() -> Iterator[pg_private.PrivatePostgres]:
    """A PostgreSQL of our own, which the test may stop and restart (never the shared one)."""
    if not pg_private.available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with pg_private.private_postgres() as server:
        yield server


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        fieldreport_cmd(*args), env=subprocess_env(**(env or {})), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_project(storage: list[str], name: str = "acme") -> dict[str, Any]:
    """Create a project with the real CLI; returns its JSON (id, public_key, secret_key)."""
    out: dict[str, Any] = json.loads(cli("project", "create", name, "--json", *storage))
    return out


def storage_args(data_dir: Path, database_url: str, blob_url: str | None = None) -> list[str]:
    args = ["--data-dir", str(data_dir), "--database-url", database_url]
    if blob_url:
        args += ["--blob-url", blob_url]
    return args
