"""``fieldreport widget ...``: the script tag to paste into a web app, and the bundle's facts."""

from __future__ import annotations

from html import escape
from typing import Any

import click

from fieldreport.cli.common import pop_settings, print_json, settings_options
from fieldreport.web.bundle import load_bundle

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")


@click.group()
def widget() -> None:
    """The browser widget: its script tag and its build."""


def script_tag(base_url: str, key: str, *, pinned: bool, data: dict[str, str]) -> str:
    bundle = load_bundle()
    path = f"/widget/{bundle.versioned_widget_name}" if pinned else "/widget.js"
    attrs = "".join(f' data-{name}="{escape(value)}"' for name, value in data.items() if value)
    return f'<script src="{escape(base_url)}{path}" data-key="{escape(key)}"{attrs} async></script>'


@widget.command("snippet")
@click.option("--key", required=True, help="The project's public key (from `project create`).")
@click.option("--record", is_flag=True, help="Record sessions (loads the rrweb recorder).")
@click.option(
    "--trace-origins",
    default="",
    help="Other origins of your API (comma-separated) whose requests get br-recording-uuid.",
)
@click.option("--position", type=click.Choice(POSITIONS), default=None, help="Button corner.")
@click.option("--color", default=None, help="Accent colour, e.g. '#0f766e'.")
@click.option("--label", default=None, help="Button label (default 'Report a bug').")
@click.option("--no-button", is_flag=True, help="No button: call fieldreport.open() yourself.")
@click.option("--pinned", is_flag=True, help="Use this build's immutable URL (no auto-updates).")
@settings_options(("public_url", "host", "port"))
def snippet(
    key: str,
    record: bool,
    trace_origins: str,
    position: str | None,
    color: str | None,
    label: str | None,
    no_button: bool,
    pinned: bool,
    **kwargs: Any,
) -> None:
    """Print the <script> tag that adds the widget to a web page.

    The URL is FIELDREPORT_PUBLIC_URL (or --public-url): the address browsers reach us at.
    Allow your app's origin too: `fieldreport project set NAME --origin https://app.example`.
    """
    settings = pop_settings(kwargs)
    data = {
        "record": "true" if record else "",
        "trace-origins": trace_origins.strip(),
        "position": position or "",
        "color": color or "",
        "label": label or "",
        "button": "false" if no_button else "",
    }
    click.echo(script_tag(settings.effective_public_url, key, pinned=pinned, data=data))


@widget.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def info(as_json: bool) -> None:
    """Show the bundled widget's version, files, hashes and gzipped sizes."""
    bundle = load_bundle()
    facts: dict[str, Any] = {
        "version": bundle.version,
        "widget": {
            "url": "/widget.js",
            "pinned_url": f"/widget/{bundle.versioned_widget_name}",
            "sha256": bundle.widget.sha256,
            "bytes": len(bundle.widget.body),
            "gzip_bytes": len(bundle.widget.gzipped),
        },
        "recorder": {
            "url": f"/widget/{bundle.recorder.name}",
            "sha256": bundle.recorder.sha256,
            "bytes": len(bundle.recorder.body),
            "gzip_bytes": len(bundle.recorder.gzipped),
        },
    }
    if as_json:
        print_json(facts)
        return
    click.echo(f"widget {bundle.version}")
    for name in ("widget", "recorder"):
        part = facts[name]
        click.echo(
            f"  {part['url']:<32} {part['bytes'] / 1024:6.1f} KB "
            f"({part['gzip_bytes'] / 1024:.1f} KB gzipped)  sha256 {part['sha256'][:16]}…"
        )
