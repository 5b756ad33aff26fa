"""A small client for fieldreport's full-stack API (``/api/fullstack/v1/send``)."""

from __future__ import annotations

import json
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from fieldreport.sdk.context import current_recording

JSONish = str | Mapping[str, Any] | Sequence[Any] | None


class FieldreportError(RuntimeError):
    """fieldreport could not be reached, or answered with a server error (worth retrying)."""


@dataclass(frozen=True)
class SendResult:
    """What fieldreport answered for one event."""

    status: int  # HTTP status; 0 when nothing was sent (no recording)
    id: int | None = None
    errors: list[str] = field(default_factory=list)
    pending: bool = False  # stored, waiting for its recording to start

    @property
    def ok(self) -> bool:
        """Stored durably (perhaps waiting for its recording to start: ``pending``)."""
        return self.status == 200


def _text(value: JSONish) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def now_millis() -> int:
    return time.time_ns() // 1_000_000


def exception_title(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )


def exception_event(
    exc: BaseException,
    *,
    recording: str,
    origin: str,
    title: str | None = None,
    level: str = "error",
    metadata: JSONish = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """An ``exception`` event: the formatted traceback as payload, the type as title."""
    meta: dict[str, Any] = {"message": str(exc)}
    if isinstance(metadata, Mapping):
        meta.update(metadata)
    elif metadata is not None:
        meta["extra"] = _text(metadata)
    return {
        "uuid": recording,
        "type": "exception",
        "level": level,
        "timestamp": timestamp if timestamp is not None else now_millis(),
        "title": title or exception_title(exc),
        "payload": "".join(traceback.format_exception(exc)),
        "metadata": json.dumps(meta, ensure_ascii=False, default=str),
        "origin": origin,
    }


def _result(status: int, body: Any, pending: bool = False) -> SendResult:
    if isinstance(body, dict) and body.get("success") == "true":
        ok = body.get("data", {}).get("data", {}).get("ok", {})
        return SendResult(status, ok.get("id"), pending=pending or bool(body.get("pending")))
    errors = []
    if isinstance(body, dict):
        errors = [str(e.get("message", "")) for e in body.get("error", []) if isinstance(e, dict)]
    return SendResult(status, None, errors)


def _no_recording() -> SendResult:
    return SendResult(0, None, ["no recording: not inside a recorded request"])


SEND = "/api/fullstack/v1/send"
SEND_BATCH = "/api/fullstack/v1/send-batch"


def log_event(
    payload: JSONish,
    *,
    recording: str,
    origin: str,
    title: str = "",
    level: str = "info",
    metadata: JSONish = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A ``log`` event (dict and list payloads are serialized to JSON text)."""
    return {
        "uuid": recording,
        "type": "log",
        "level": level,
        "timestamp": timestamp if timestamp is not None else now_millis(),
        "title": title,
        "payload": _text(payload),
        "metadata": _text(metadata),
        "origin": origin,
    }


def _answer(resp: httpx.Response) -> tuple[int, Any, bool]:
    if resp.status_code >= 500:
        raise FieldreportError(f"fieldreport answered {resp.status_code}: {resp.text[:200]}")
    pending = "x-fieldreport-pending" in resp.headers
    try:
        return resp.status_code, resp.json(), pending
    except ValueError:
        return resp.status_code, None, pending


def _batch_results(status: int, body: Any, count: int) -> list[SendResult]:
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return [_result(int(r.get("status", 0)), r) for r in body["results"]]
    whole = _result(status, body)
    return [whole for _ in range(count)]


class _Base:
    def __init__(self, url: str, secret_key: str, origin: str | None) -> None:
        self.url = url.rstrip("/")
        self.origin = origin if origin is not None else socket.gethostname()
        self._headers = {"Authorization": f"Bearer {secret_key}"}

    def _log(self, payload: JSONish, recording: str | None, **fields: Any) -> dict[str, Any] | None:
        recording = recording or current_recording.get()
        if not recording:
            return None
        return log_event(payload, recording=recording, origin=self.origin, **fields)

    def _exception(
        self, exc: BaseException, recording: str | None, **fields: Any
    ) -> dict[str, Any] | None:
        recording = recording or current_recording.get()
        if not recording:
            return None
        return exception_event(exc, recording=recording, origin=self.origin, **fields)


class FieldreportClient(_Base):
    """Sends events synchronously (in async code use :class:`AsyncFieldreportClient`, or the
    logging handler). Thread-safe. Raises :class:`FieldreportError` when the server cannot be
    reached or fails (5xx); validation and key problems come back in the
    :class:`SendResult` (``ok`` is False, ``errors`` says why)."""

    def __init__(
        self,
        url: str,
        secret_key: str,
        *,
        origin: str | None = None,
        timeout: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, secret_key, origin)
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FieldreportClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: Any) -> tuple[int, Any, bool]:
        try:
            resp = self._http.post(self.url + path, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise FieldreportError(f"fieldreport unreachable: {exc}") from exc
        return _answer(resp)

    def send(self, event: Mapping[str, Any]) -> SendResult:
        """Send one event as given (the seed's fields)."""
        status, body, pending = self._post(SEND, dict(event))
        return _result(status, body, pending)

    def send_batch(self, events: Sequence[Mapping[str, Any]]) -> list[SendResult]:
        """Send up to 1000 events in one request; one result per event."""
        if not events:
            return []
        status, body, _ = self._post(SEND_BATCH, [dict(e) for e in events])
        return _batch_results(status, body, len(events))

    def send_log(
        self,
        payload: JSONish,
        *,
        recording: str | None = None,
        title: str = "",
        level: str = "info",
        metadata: JSONish = None,
        timestamp: int | None = None,
    ) -> SendResult:
        """Send a log line (text, XML, or JSON: dicts and lists are serialized) to the
        recording of the current request (or ``recording``)."""
        event = self._log(
            payload, recording, title=title, level=level, metadata=metadata, timestamp=timestamp
        )
        return _no_recording() if event is None else self.send(event)

    def send_exception(
        self,
        exc: BaseException,
        *,
        recording: str | None = None,
        title: str | None = None,
        level: str = "error",
        metadata: JSONish = None,
        timestamp: int | None = None,
    ) -> SendResult:
        """Send an exception: its formatted traceback, its type as the title."""
        event = self._exception(
            exc, recording, title=title, level=level, metadata=metadata, timestamp=timestamp
        )
        return _no_recording() if event is None else self.send(event)


class AsyncFieldreportClient(_Base):
    """The same as :class:`FieldreportClient`, for asyncio code (``await client.send_log``)."""

    def __init__(
        self,
        url: str,
        secret_key: str,
        *,
        origin: str | None = None,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, secret_key, origin)
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncFieldreportClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, path: str, body: Any) -> tuple[int, Any, bool]:
        try:
            resp = await self._http.post(self.url + path, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise FieldreportError(f"fieldreport unreachable: {exc}") from exc
        return _answer(resp)

    async def send(self, event: Mapping[str, Any]) -> SendResult:
        status, body, pending = await self._post(SEND, dict(event))
        return _result(status, body, pending)

    async def send_batch(self, events: Sequence[Mapping[str, Any]]) -> list[SendResult]:
        if not events:
            return []
        status, body, _ = await self._post(SEND_BATCH, [dict(e) for e in events])
        return _batch_results(status, body, len(events))

    async def send_log(
        self,
        payload: JSONish,
        *,
        recording: str | None = None,
        title: str = "",
        level: str = "info",
        metadata: JSONish = None,
        timestamp: int | None = None,
    ) -> SendResult:
        event = self._log(
            payload, recording, title=title, level=level, metadata=metadata, timestamp=timestamp
        )
        return _no_recording() if event is None else await self.send(event)

    async def send_exception(
        self,
        exc: BaseException,
        *,
        recording: str | None = None,
        title: str | None = None,
        level: str = "error",
        metadata: JSONish = None,
        timestamp: int | None = None,
    ) -> SendResult:
        event = self._exception(
            exc, recording, title=title, level=level, metadata=metadata, timestamp=timestamp
        )
        return _no_recording() if event is None else await self.send(event)
