"""The ``fieldreport`` command line."""

from __future__ import annotations

import sys

import click

from fieldreport import __version__
from fieldreport.cli import (
    delivery,
    destination,
    events,
    project,
    receive,
    report,
    serve,
    session,
    user,
    widget,
)
from fieldreport.storage.dbwait import DatabaseUnreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fieldreport")
def cli() -> None:
    """fieldreport: collect bug reports from the field and push them where your team works.

    Every setting can be given as a flag or as a FIELDREPORT_* environment variable.
    """


cli.add_command(serve.serve)
cli.add_command(serve.migrate)
cli.add_command(project.project)
cli.add_command(report.report)
cli.add_command(widget.widget)
cli.add_command(user.user)
cli.add_command(destination.destination)
cli.add_command(delivery.delivery)
cli.add_command(delivery.worker)
cli.add_command(receive.receive)
cli.add_command(session.session)
cli.add_command(session.gc)
cli.add_command(events.events)


def main() -> None:
    try:
        cli(prog_name="fieldreport")
    except DatabaseUnreachable as exc:  # from any command: one clear line, no traceback
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
