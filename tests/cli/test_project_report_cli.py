"""The project and report commands against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from fieldreport.app import create_app
from fieldreport.cli import cli
from fieldreport.settings import Settings
from fieldreport.state import open_state
from tests.support.images import png_bytes


@pytest.fixture
def run_cli(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> str:
        result = runner.invoke(
            cli,
            [*args, "--data-dir", str(tmp_path / "data"), "--database-url", database_url],
            catch_exceptions=False,
        )
        if ok:
            assert result.exit_code == 0, result.output
        else:
            assert result.exit_code != 0, result.output
        return result.output

    return invoke


def test_project_lifecycle(run_cli) -> None:  # type: ignore[no-untyped-def]
    created = json.loads(run_cli("project", "create", "shop", "--json"))
    assert set(created) == {"id", "name", "public_key", "secret_key"}
    assert created["name"] == "shop"
    assert created["public_key"].startswith("frpub_") and created["secret_key"].startswith("frsec_")
    assert "already exists" in run_cli("project", "create", "shop", ok=False)

    listed = json.loads(run_cli("project", "list", "--json"))
    assert [p["name"] for p in listed] == ["shop"]
    text = run_cli("project", "list")
    assert created["public_key"] not in text and created["secret_key"] not in text

    out = run_cli("project", "set", "shop", "--origin", "https://App.Example:443/")
    assert "https://app.example" in out
    assert "not an origin" in run_cli("project", "set", "shop", "--origin", "ftp://x", ok=False)
    shown = json.loads(run_cli("project", "show", "shop"))
    assert shown["origins"] == ["https://app.example"]

    rotated = json.loads(run_cli("project", "rotate-key", "shop", "--secret", "--json"))
    assert set(rotated) == {"id", "name", "secret_key"}
    assert rotated["secret_key"] != created["secret_key"]
    assert "no project named" in run_cli("project", "show", "nope", ok=False)


def test_report_commands(run_cli, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    keys = json.loads(run_cli("project", "create", "shop", "--json"))
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, public_url="http://x.test"
    )

    async def post() -> str:
        state = await open_state(settings)
        try:
            transport = httpx.ASGITransport(app=create_app(settings, state=state))
            async with httpx.AsyncClient(transport=transport, base_url="http://x.test") as client:
                resp = await client.post(
                    "/api/v1/reports",
                    data={"key": keys["public_key"], "subject": "Broken", "notelist[]": ["a note"]},
                    files={"file": ("s.png", png_bytes(), "image/png")},
                )
            assert resp.status_code == 201
            return str(resp.json()["reportid"])
        finally:
            await state.close()

    reportid = asyncio.run(post())
    listed = json.loads(run_cli("report", "list", "--project", "shop", "--json"))
    assert [r["reportid"] for r in listed] == [reportid]
    assert reportid in run_cli("report", "list")
    shown = run_cli("report", "show", reportid)
    assert "Broken" in shown and "a note" in shown and "screenshot" in shown
    assert json.loads(run_cli("report", "show", reportid, "--json"))["notelist"] == ["a note"]
    assert "no report" in run_cli("report", "show", "missing", ok=False)
    assert "no project" in run_cli("report", "list", "--project", "nope", ok=False)
