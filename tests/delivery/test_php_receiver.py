"""Seed 000's sample PHP receiver, unchanged, accepts our multipart push."""

from __future__ import annotations

from pathlib import Path

import httpx

from fieldreport.delivery.worker import Worker
from fieldreport.state import AppState
from fieldreport.storage.projects import NewProject
from tests.delivery.helpers import FakeClock, add_dest, attempts, only_delivery, reload, submit
from tests.delivery.receivers import FIXTURES, php_receiver
from tests.support.images import png_bytes


def test_fixture_is_the_seed_script_unchanged() -> None:
    text = (FIXTURES / "seed000_receiver.php").read_text()
    assert text.startswith("<?php\n//perform a security check")
    assert "if ($_POST['token'] != \"MySecurityToken\") {" in text
    assert 'echo "no access";' in text and text.rstrip().endswith("?>")


async def test_php_receiver_accepts_our_push(
    state: AppState, project: NewProject, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with php_receiver(tmp_path) as php:
        await add_dest(state, project, php.url, token="MySecurityToken")
        report_id = await submit(client, project)
        worker = Worker(state)
        try:
            await worker.run_until_idle()
        finally:
            await worker.sender.close()
        delivery = await only_delivery(state)
        tries = await attempts(state, delivery.id)
        assert delivery.status == "delivered", tries
        assert tries[-1].status_code == 200 and tries[-1].response_excerpt == "ok"
        (folder,) = list(php.output.iterdir())
        files = {p.name: p for p in folder.iterdir()}
        # The screenshot, under the safe filename we sent, byte for byte.
        assert files["Screen_shot.png"].read_bytes() == png_bytes(200, 120)
        info = files["information.txt"].read_text()
        assert "[token] => MySecurityToken" in info
        assert f"[reportid] => {report_id}" in info
        assert "[ticketnr] => 1" in info
        assert "[subject] => Checkout broken" in info
        assert "[sendercomment] => Nothing happens when I click <Pay> & wait" in info
        assert "[senderemail] => user@example.com" in info
        assert "[referer] => https://app.example.com/checkout" in info
        assert "[browser] => Mozilla/5.0 Test" in info
        assert "[ipaddress] => 127.0.0.1" in info
        assert f"[ticketurl] => http://fieldreport.test/reports/{report_id}" in info
        assert '[additionalinfo] => {"plan": "pro"}' in info
        # notelist[] parts arrive as a PHP array, one element per note.
        assert "[notelist] => Array" in info
        assert "[0] => first note" in info and "[1] => second note: ünïcode ✓" in info
        assert "backendlog" not in info


async def test_php_receiver_refuses_a_wrong_token_and_we_retry(
    state: AppState, project: NewProject, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with php_receiver(tmp_path) as php:
        await add_dest(state, project, php.url, token="wrong")
        await submit(client, project)
        clock = FakeClock()
        worker = Worker(state, now=clock, rand=lambda: 0.5)
        try:
            await worker.run_until_idle()
        finally:
            await worker.sender.close()
        delivery = await only_delivery(state)
        (attempt,) = await attempts(state, delivery.id)
        # The seed's script answers a bad token with a malformed status line
        # ("HTTP/1.1500 Internal Server Error": no space); that is a failure, retried.
        assert attempt.status_code is None and "HTTP/1.1500" in (attempt.error or "")
        assert attempt.outcome == "retry"
        assert delivery.status == "failed" and delivery.attempts == 1
        assert delivery.next_attempt_at is not None
        assert abs((delivery.next_attempt_at - clock.now).total_seconds() - 5) < 0.01
        assert list(php.output.iterdir()) == []
        assert "HTTP/1.1500" in ((await reload(state, delivery.id)).last_error or "")
