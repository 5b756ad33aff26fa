"""``fieldreport widget snippet`` and ``fieldreport widget info``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fieldreport.cli import cli
from fieldreport.web.bundle import load_bundle


def test_snippet_uses_the_public_url_and_options() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "widget",
            "snippet",
            "--key",
            "frp_abc",
            "--record",
            "--trace-origins",
            "https://api.example",
            "--label",
            'Say "hi"',
            "--public-url",
            "https://bugs.example.com/",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        '<script src="https://bugs.example.com/widget.js" data-key="frp_abc" data-record="true"'
        ' data-trace-origins="https://api.example" data-label="Say &quot;hi&quot;" async></script>'
    )


def test_pinned_snippet_and_info() -> None:
    bundle = load_bundle()
    pinned = CliRunner().invoke(
        cli, ["widget", "snippet", "--key", "k", "--pinned", "--no-button", "--port", "9000"]
    )
    assert pinned.exit_code == 0, pinned.output
    assert f'src="http://127.0.0.1:9000/widget/{bundle.versioned_widget_name}"' in pinned.output
    assert 'data-button="false"' in pinned.output

    info = CliRunner().invoke(cli, ["widget", "info", "--json"])
    facts = json.loads(info.output)
    assert facts["widget"]["sha256"] == bundle.widget.sha256
    assert facts["recorder"]["url"] == f"/widget/{bundle.recorder.name}"
    assert facts["widget"]["gzip_bytes"] <= 60 * 1024
