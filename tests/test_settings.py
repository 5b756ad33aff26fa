"""Settings: parsing, and every setting documented in the README with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from fieldreport.cli import cli
from fieldreport.settings import Settings, env_var

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\|\s*`(FIELDREPORT_[A-Z0-9_]+)`\s*\|(.*)", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    rows = _readme_rows()
    var = env_var(name)
    assert var in rows, f"{var} is missing from the README's settings table"
    default = Settings.model_fields[name].default
    if isinstance(default, bool):
        assert f"`{str(default).lower()}`" in rows[var] or f"`{int(default)}`" in rows[var]
    elif isinstance(default, int | float | str | Path) and default != "":
        shown = (
            str(int(default))
            if isinstance(default, float) and default.is_integer()
            else str(default)
        )
        assert f"`{shown}`" in rows[var], f"{var}: default {shown!r} not shown in the README"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_a_serve_flag(name: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200)
    assert "--" + name.replace("_", "-") in result.output
    assert env_var(name) in result.output


def test_units_and_lists_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDREPORT_MAX_REPORT_BYTES", "5MiB")
    monkeypatch.setenv("FIELDREPORT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("FIELDREPORT_SHUTDOWN_TIMEOUT", "1m30s")
    s = Settings()
    assert s.max_report_bytes == 5 * 1024 * 1024
    assert s.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert s.shutdown_timeout == 90


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDREPORT_TRUSTED_PROXIES", "not-a-network")
    with pytest.raises(ValidationError):
        Settings()


def test_defaults_are_embedded(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'fieldreport.db'}"
    assert s.effective_blob_url == (tmp_path / "blobs").as_uri()
    assert s.effective_public_url == "http://127.0.0.1:8000"
