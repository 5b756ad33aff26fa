"""The commands of the delivery feature exist and say what they do."""

from __future__ import annotations

from click.testing import CliRunner

from fieldreport.cli import cli


def help_of(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_delivery_commands_documented() -> None:
    assert "--no-worker" in help_of("serve")
    assert "--delivery-lease" in help_of("worker")
    add = help_of("destination", "add")
    for flag in ("--format", "--token", "--secret", "--header", "--backup", "--retry-schedule",
                 "--timeout", "--json"):  # fmt: skip
        assert flag in add
    assert "--dead" in help_of("delivery", "retry") and "--since" in help_of("delivery", "retry")
    receive = help_of("receive")
    assert all(f in receive for f in ("--dir", "--token", "--secret", "--port"))
