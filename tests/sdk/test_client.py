"""The SDK client and logging handler against a running fieldreport (both backends)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid

import pytest

from fieldreport.sdk import (
    AsyncFieldreportClient,
    FieldreportClient,
    FieldreportHandler,
    HandlerStats,
    current_recording,
)
from fieldreport.sdk.client import FieldreportError
from fieldreport.state import AppState
from fieldreport.storage.backend_events import list_events
from fieldreport.storage.projects import NewProject
from tests.conftest import RunningServer, free_port
from tests.support.proc import subprocess_env
from tests.support.recordings import start_session


def test_sdk_imports_nothing_but_stdlib_and_httpx() -> None:
    code = (
        "import sys, fieldreport.sdk\n"
        "heavy = {'starlette', 'sqlalchemy', 'pydantic', 'uvicorn', 'aiohttp', 'obstore'}\n"
        "loaded = {m.split('.')[0] for m in sys.modules} & heavy\n"
        "ours = [m for m in sys.modules if m.startswith('fieldreport.')"
        " and not m.startswith('fieldreport.sdk')]\n"
        "assert not loaded and not ours, (loaded, ours)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=subprocess_env(), check=True, timeout=60)


async def test_send_log_and_exception(
    server: RunningServer, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    client = FieldreportClient(server.url, project.secret_key, origin="worker-7")

    def work() -> list[object]:
        results: list[object] = [client.send_log({"a": 1}, recording=recording, title="json")]
        token = current_recording.set(recording)
        try:
            try:
                raise KeyError("sku-42")
            except KeyError as exc:
                results.append(client.send_exception(exc, metadata={"order": 7}))
        finally:
            current_recording.reset(token)
        results.append(client.send_log("outside any recording"))
        results.append(client.send_log("x", recording=recording, timestamp=1700000000))
        results.append(client.send_log("early", recording=str(uuid.uuid4())))
        return results

    log_result, exc_result, skipped, bad, early = await asyncio.to_thread(work)
    client.close()
    assert log_result.ok and log_result.status == 200 and log_result.id  # type: ignore[attr-defined]
    assert exc_result.ok  # type: ignore[attr-defined]
    assert skipped.status == 0 and not skipped.ok  # type: ignore[attr-defined]
    assert bad.status == 400 and "looks like seconds" in bad.errors[0]  # type: ignore[attr-defined]
    assert early.ok and early.pending  # type: ignore[attr-defined]

    async with state.db.read() as conn:
        events = await list_events(conn, recording)
    by_type = {e.type: e for e in events}
    assert by_type["log"].payload == '{"a": 1}' and by_type["log"].origin == "worker-7"
    exc_event = by_type["exception"]
    assert exc_event.title == "KeyError" and exc_event.level == "error"
    assert "Traceback (most recent call last)" in exc_event.payload
    assert "KeyError: 'sku-42'" in exc_event.payload
    assert '"order": 7' in exc_event.metadata


async def test_client_raises_when_fieldreport_is_down() -> None:
    client = FieldreportClient(f"http://127.0.0.1:{free_port()}", "frsec_x", timeout=2)
    with pytest.raises(FieldreportError):
        await asyncio.to_thread(client.send_log, "x", recording="r")
    client.close()


async def test_handler_ships_only_recorded_records_in_batches(
    server: RunningServer, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    handler = FieldreportHandler(
        FieldreportClient(server.url, project.secret_key), flush_interval=0.05, batch_size=7
    )
    logger = logging.getLogger("tests.sdk.batched")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("before any request")  # no recording: not shipped
        token = current_recording.set(recording)
        for i in range(30):
            logger.info("step %d", i)
        logger.debug("below the handler's level")
        logging.getLogger("httpx").warning("never ours to ship")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("division failed")
        current_recording.reset(token)
        await asyncio.to_thread(handler.flush, 10)
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
    stats = handler.stats()
    assert (stats.sent, stats.rejected, stats.dropped, stats.queued) == (31, 0, 0, 0)
    async with state.db.read() as conn:
        events = await list_events(conn, recording)
    logs = [e for e in events if e.type == "log"]
    assert [e.title for e in logs] == [f"step {i}" for i in range(30)]
    [exc] = [e for e in events if e.type == "exception"]
    assert exc.title == "ZeroDivisionError" and exc.payload.startswith("division failed\n")
    assert exc.level == "error"


async def test_handler_never_raises_and_counts_drops_when_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FieldreportClient(f"http://127.0.0.1:{free_port()}", "frsec_x", timeout=1)
    handler = FieldreportHandler(
        client,
        capacity=10,
        batch_size=100,
        flush_interval=30,  # the sender only wakes on flush: the count below is exact
        retry_delay=0.01,
        max_attempts=2,
        report_every=0,
    )
    logger = logging.getLogger("tests.sdk.down")
    logger.propagate = False
    logger.addHandler(handler)
    token = current_recording.set("rec-1")
    try:
        for i in range(50):
            logger.warning("record %d", i)  # must neither block nor raise
        assert handler.stats().dropped == 40  # the buffer holds 10
    finally:
        current_recording.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    with caplog.at_level(logging.WARNING, logger="fieldreport.sdk"):
        await asyncio.to_thread(handler.flush, 10)
        await asyncio.to_thread(handler.close)
    stats = handler.stats()
    assert stats.sent == 0 and stats.queued == 0
    assert stats.dropped == 50
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_truncate_utf8_stays_valid_and_within_the_limit() -> None:
    from fieldreport.sdk.handler import TRUNCATED, truncate_utf8

    assert truncate_utf8("short", 100) == "short"
    cut = truncate_utf8("é" * 1000, 101)
    assert cut.endswith(TRUNCATED)
    assert len(cut.encode()) <= 101
    cut.encode("utf-8")  # no half characters


async def test_handler_cuts_oversized_records_instead_of_losing_them(
    server: RunningServer, project: NewProject, state: AppState
) -> None:
    recording = await start_session(state, project.project.id)
    handler = FieldreportHandler(
        FieldreportClient(server.url, project.secret_key), flush_interval=0.05
    )
    logger = logging.getLogger("tests.sdk.big")
    logger.addHandler(handler)
    try:
        token = current_recording.set(recording)
        for _ in range(40):  # ~10 MiB after cutting: more than one request's worth
            logger.warning("dump: %s", "z" * 400_000)
        current_recording.reset(token)
        await asyncio.to_thread(handler.flush, 10)
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
    assert handler.stats() == HandlerStats(queued=0, sent=40, rejected=0, dropped=0)
    async with state.db.read() as conn:
        events = await list_events(conn, recording)
    assert len(events) == 40
    assert events[0].payload.endswith("[truncated by fieldreport.sdk]")
    assert len(events[0].payload.encode()) <= 256 * 1024


async def test_async_client(server: RunningServer, project: NewProject, state: AppState) -> None:
    recording = await start_session(state, project.project.id)
    async with AsyncFieldreportClient(server.url, project.secret_key, origin="api-3") as client:
        token = current_recording.set(recording)
        try:
            logged = await client.send_log("<order id='7'/>", title="xml", level="DEBUG")
            try:
                raise RuntimeError("boom")
            except RuntimeError as exc:
                failed = await client.send_exception(exc)
        finally:
            current_recording.reset(token)
        skipped = await client.send_log("outside")
        batch = await client.send_batch(
            [
                {"uuid": recording, "type": "log", "payload": "a", "timestamp": 1700000000000},
                {"uuid": recording, "type": "nope", "payload": "b", "timestamp": 1700000000000},
            ]
        )
    assert logged.ok and failed.ok and not skipped.ok
    assert [r.ok for r in batch] == [True, False]
    assert batch[1].errors == ["Type must be 'log' or 'exception'"]
    async with state.db.read() as conn:
        events = await list_events(conn, recording)
    assert {(e.type, e.title, e.origin) for e in events} >= {
        ("log", "xml", "api-3"),
        ("exception", "RuntimeError", "api-3"),
    }
    async with AsyncFieldreportClient(f"http://127.0.0.1:{free_port()}", "k") as down:
        with pytest.raises(FieldreportError):
            await down.send_log("x", recording="r")
