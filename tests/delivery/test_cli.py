"""``fieldreport destination`` and ``fieldreport delivery`` as real subprocesses."""

from __future__ import annotations

import httpx
import pytest

from fieldreport.settings import Settings
from fieldreport.state import AppState
from fieldreport.storage.destinations import chain
from fieldreport.storage.projects import NewProject
from tests.delivery.cliutil import cli
from tests.delivery.helpers import add_dest, only_delivery, submit
from tests.delivery.receivers import Receiver, serve_receiver

pytestmark = pytest.mark.parametrize("backend", ["sqlite+local"], indirect=True)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {}  # private destinations refused unless a test allows them


async def test_add_list_remove_with_secrets_redacted(
    settings: Settings, state: AppState, project: NewProject
) -> None:
    added = await cli(
        settings, "destination", "add", "acme", "http://127.0.0.1:9/hook",
        "--token", "T0KEN-abc", "--header", "Authorization: Bearer hdr-s3cret", "--json",
        FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1",
    )  # fmt: skip
    assert added.code == 0, added.err
    shown = added.json()
    assert (
        shown["role"] == "primary" and shown["token_set"] and shown["headers"] == ["Authorization"]
    )
    # A public-looking name resolving nowhere is refused, and so is a second primary.
    second = await cli(settings, "destination", "add", "acme", "http://127.0.0.1:9/other",
                       FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1")  # fmt: skip
    assert second.code == 1 and "already has a primary" in second.err
    backup = await cli(
        settings, "destination", "add", "acme", "http://127.0.0.1:9/b?token=tok_s3cr3t",
        "--backup", "--format", "json", "--secret", "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "--retry-schedule", "0s,1m", "--timeout", "3s",
        FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1",
    )  # fmt: skip
    assert backup.code == 0, backup.err
    listed = await cli(settings, "destination", "list", "acme")
    text = listed.out + listed.err + backup.out + added.out
    for secret in ("T0KEN-abc", "hdr-s3cret", "tok_s3cr3t", "MfKQ9r8G"):
        assert secret not in text
    assert "token=***" in listed.out and "backup" in listed.out and "retries 0s,1m" in listed.out
    items = (await cli(settings, "destination", "list", "acme", "--json")).json()
    assert [d["role"] for d in items] == ["primary", "backup"]
    assert items[1]["format"] == "json" and items[1]["secret_set"] and items[1]["timeout"] == "3s"
    removed = await cli(settings, "destination", "remove", str(items[0]["id"]))
    assert removed.code == 0 and "tok_s3cr3t" not in removed.out
    async with state.db.read() as conn:
        assert [d.id for d in await chain(conn, project.project.id)] == [items[1]["id"]]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://10.0.0.8/hook", "private"),
        ("smtp://u:p@mail.example.com:587?to=ops@example.com&bogus=1", "unknown parameter"),
        ("ftps://u:p@files.example.com/in", "ftps:// destinations (FTP) are not available"),
        ("gopher://x/", "unsupported destination scheme"),
        ("https://hooks.example.com/x#frag", "#inline"),
    ],
)
async def test_add_refuses(settings: Settings, project: NewProject, url: str, message: str) -> None:
    result = await cli(settings, "destination", "add", "acme", url)
    assert result.code != 0 and message in result.err, result.err
    assert "u:p@" not in result.err


async def test_email_and_ftp_backups_accepted(
    settings: Settings, state: AppState, project: NewProject
) -> None:
    for url in (
        "http://127.0.0.1:9/hook",
        "smtp://bot:mailpw99@127.0.0.1:2525?to=ops@example.com&from=fr@example.com",
        "ftp://bot:ftppw99@127.0.0.1:2121/incoming",
        "sftp://bot:sftppw99@127.0.0.1:2222/incoming",
    ):
        added = await cli(settings, "destination", "add", "acme", url, "--backup",
                          FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1")  # fmt: skip
        assert added.code == 0, added.err
    listed = await cli(settings, "destination", "list", "acme")
    assert all(pw not in listed.out for pw in ("mailpw99", "ftppw99", "sftppw99"))
    items = (await cli(settings, "destination", "list", "acme", "--json")).json()
    assert [d["scheme"] for d in items] == ["http", "smtp", "ftp", "sftp"]
    assert items[1]["format"] is None and items[1]["url"].startswith("smtp://bot:***@")
    wrong = await cli(settings, "destination", "add", "acme",
                      "ftp://bot:ftppw99@127.0.0.1:2121/x", "--backup", "--format", "json",
                      FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1")  # fmt: skip
    assert wrong.code == 1 and "HTTP destinations only" in wrong.err


async def test_bad_options_refused(settings: Settings, project: NewProject) -> None:
    for args, message in [
        (["--format", "json", "--secret", "nope"], "whsec_"),
        (["--header", "NoColon"], "Name: value"),
        (["--retry-schedule", "5x"], "not a duration"),
        (["--secret", "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "multipart carries --token"),
    ]:
        result = await cli(
            settings, "destination", "add", "acme", "http://127.0.0.1:9/h", *args,
            FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1",
        )  # fmt: skip
        assert result.code != 0 and message in result.err, (args, result.err)


async def test_destination_test_prints_the_answer(
    settings: Settings, state: AppState, project: NewProject
) -> None:
    async with serve_receiver(Receiver()) as rx:
        dest = await add_dest(state, project, rx.url, token="tok")
        result = await cli(settings, "destination", "test", str(dest.id),
                           FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1")  # fmt: skip
        assert result.code == 0, result.err
        assert "OK:" in result.out and "status 200" in result.out and "ok" in result.out
        assert b"fieldreport test report" in rx.requests[0].body
        rx.status = 500
        failed = await cli(settings, "destination", "test", str(dest.id), "--json",
                           FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS="1")  # fmt: skip
        assert failed.code == 1 and failed.json()["status_code"] == 500


async def test_private_destination_refused_again_at_send_time(
    state: AppState, project: NewProject, client: httpx.AsyncClient
) -> None:
    """Added while private receivers were allowed; the worker (not allowed) refuses to send."""
    from fieldreport.delivery.worker import Worker

    async with serve_receiver(Receiver()) as rx:
        await add_dest(state, project, rx.url.replace("127.0.0.1", "localhost"))
        await submit(client, project)
        worker = Worker(state)
        await worker.run_until_idle()
        d = await only_delivery(state)
        assert d.status == "dead" and "loopback" in (d.last_error or "")
        assert rx.requests == []
        await worker.sender.close()
