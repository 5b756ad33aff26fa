"""A ``logging.Handler`` that ships the records of recorded requests to fieldreport.

``emit`` only appends to a bounded in-memory buffer (it never blocks on the network and
never raises); a background thread sends the buffer in batches through
``/api/fullstack/v1/send-batch``. When fieldreport is down, a batch is retried a few times
with backoff; records that do not fit in the buffer, or whose batch keeps failing, are
dropped and counted (:meth:`FieldreportHandler.stats`), and the count is reported as a
warning on the ``fieldreport.sdk`` logger at most once per ``report_every`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fieldreport.sdk.client import FieldreportClient, FieldreportError, exception_event
from fieldreport.sdk.context import current_recording

log = logging.getLogger("fieldreport.sdk")

# Never ship our own records or the HTTP client's (that would feed itself).
IGNORED_LOGGERS = ("fieldreport.sdk", "httpx", "httpcore")
REPORTED = "__fieldreport_reported__"
MAX_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class HandlerStats:
    queued: int  # waiting in the buffer
    sent: int  # accepted by fieldreport (stored, perhaps waiting for the recording)
    rejected: int  # refused by fieldreport (validation, unknown recording, bad key)
    dropped: int  # never delivered: buffer full, or fieldreport unreachable too long


def mark_reported(exc: BaseException) -> bool:
    """Mark an exception as shipped; False when it already was (so it is sent once)."""
    if getattr(exc, REPORTED, False):
        return False
    with contextlib.suppress(AttributeError, TypeError):  # e.g. exceptions with __slots__
        setattr(exc, REPORTED, True)
    return True


TRUNCATED = "\n… [truncated by fieldreport.sdk]"


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, marked when cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    room = limit - len(TRUNCATED.encode())
    return data[: max(0, room)].decode("utf-8", "ignore") + TRUNCATED


class FieldreportHandler(logging.Handler):
    def __init__(
        self,
        client: FieldreportClient | None = None,
        *,
        url: str | None = None,
        secret_key: str | None = None,
        level: int = logging.INFO,
        capacity: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 1.0,
        max_attempts: int = 3,
        retry_delay: float = 1.0,
        report_every: float = 60.0,
        max_payload_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level)
        if client is None:
            if not url or not secret_key:
                raise ValueError("give a FieldreportClient, or url and secret_key")
            client = FieldreportClient(url, secret_key)
        self.client = client
        self.capacity = capacity
        self.batch_size = min(batch_size, 1000)
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.report_every = report_every
        self.max_payload_bytes = max_payload_bytes
        self.clock = clock
        self._buffer: deque[dict[str, Any]] = deque()
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._sent = self._rejected = self._dropped = 0
        self._reported_dropped = 0
        self._last_report = clock()

    # --- the application's side: never blocks, never raises ------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            recording = current_recording.get()
            if not recording or record.name.startswith(IGNORED_LOGGERS):
                return
            if getattr(record, "_fieldreport_handler", None) == id(self):
                return  # attached to a logger and its parent: one record, shipped once
            record._fieldreport_handler = id(self)
            self.enqueue(self._event(record, recording))
        except Exception:
            self.handleError(record)

    def enqueue(self, event: dict[str, Any]) -> bool:
        """Buffer one event for the background sender; False (and counted) if it is full.
        A payload over ``max_payload_bytes`` (the server's limit) is cut, not refused."""
        for name in ("payload", "metadata"):
            value = event.get(name)
            if isinstance(value, str) and len(value) * 4 > self.max_payload_bytes:
                event[name] = truncate_utf8(value, self.max_payload_bytes)
        with self._mutex:
            if len(self._buffer) >= self.capacity:
                self._dropped += 1
                return False
            self._buffer.append(event)
            self._idle.clear()
            full = len(self._buffer) >= self.batch_size
        self._ensure_thread()
        if full:
            self._wake.set()
        return True

    def enqueue_exception(
        self, exc: BaseException, recording: str, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """Ship an unhandled exception (used by the middleware); once per exception."""
        if not mark_reported(exc):
            return False
        return self.enqueue(
            exception_event(exc, recording=recording, origin=self.client.origin, metadata=metadata)
        )

    def _event(self, record: logging.LogRecord, recording: str) -> dict[str, Any]:
        message = record.getMessage()
        meta: dict[str, Any] = {
            "logger": record.name,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "thread": record.threadName,
            "process": record.process,
        }
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and mark_reported(exc):
            event = exception_event(
                exc, recording=recording, origin=self.client.origin, metadata=meta
            )
            event["level"] = record.levelname.lower()
            event["timestamp"] = int(record.created * 1000)
            event["payload"] = f"{message}\n{event['payload']}"
            return event
        payload = self.format(record) if self.formatter is not None else message
        return {
            "uuid": recording,
            "type": "log",
            "level": record.levelname.lower(),
            "timestamp": int(record.created * 1000),
            "title": message.splitlines()[0][:200] if message else "",
            "payload": payload,
            "metadata": json.dumps(meta, default=str),
            "origin": self.client.origin,
        }

    # --- the background sender ----------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._mutex:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()  # after a fork, the parent's thread is gone
            self._thread = threading.Thread(
                target=self._run, name="fieldreport-log-sender", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while True:
                with self._mutex:
                    batch = self._take_batch()
                    if not batch:
                        self._idle.set()
                        break
                self._ship(batch)
            self._maybe_report()
            if self._stopping:
                return

    def _take_batch(self) -> list[dict[str, Any]]:
        """Up to ``batch_size`` events and about ``MAX_BATCH_BYTES`` (the server takes
        32 MiB per batch); always at least one."""
        batch: list[dict[str, Any]] = []
        size = 0
        while self._buffer and len(batch) < self.batch_size:
            event = self._buffer[0]
            weight = len(event.get("payload", "")) + len(event.get("metadata", "")) + 512
            if batch and size + weight > MAX_BATCH_BYTES:
                break
            batch.append(self._buffer.popleft())
            size += weight
        return batch

    def _ship(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                results = self.client.send_batch(batch)
            except FieldreportError as exc:
                if attempt == self.max_attempts or self._stopping:
                    with self._mutex:
                        self._dropped += len(batch)
                    log.debug("giving up on %d records: %s", len(batch), exc)
                    return
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
                continue
            except Exception:  # a bug must not kill the sender thread
                log.exception("fieldreport log sender failed")
                with self._mutex:
                    self._dropped += len(batch)
                return
            ok = sum(1 for r in results if r.ok)
            with self._mutex:
                self._sent += ok
                self._rejected += len(results) - ok
            if ok < len(results):
                errors = {e for r in results if not r.ok for e in r.errors}
                log.debug("fieldreport refused %d records: %s", len(results) - ok, errors)
            return

    def _maybe_report(self, force: bool = False) -> None:
        now = self.clock()
        with self._mutex:
            new = self._dropped - self._reported_dropped
            due = force or now - self._last_report >= self.report_every
            if new <= 0 or not due:
                return
            self._reported_dropped = self._dropped
            self._last_report = now
            total = self._dropped
        log.warning(
            "fieldreport: dropped %d log records (%d in total): buffer full or fieldreport "
            "unreachable",
            new,
            total,
        )

    # --- control ---------------------------------------------------------------------------
    def stats(self) -> HandlerStats:
        with self._mutex:
            return HandlerStats(len(self._buffer), self._sent, self._rejected, self._dropped)

    def flush(self, timeout: float | None = 5.0) -> None:
        """Send what is buffered now; wait up to ``timeout`` seconds for it to be sent."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._wake.set()
        self._idle.wait(timeout)

    def close(self) -> None:
        """Send what is left (up to a few seconds), stop the sender, report drops."""
        self.flush()
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5.0)
        with self._mutex:
            self._dropped += len(self._buffer)
            self._buffer.clear()
        self._maybe_report(force=True)
        super().close()
