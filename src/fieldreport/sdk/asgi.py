"""ASGI middleware: the request's recording into a context variable; unhandled exceptions
shipped to fieldreport (through the handler's background sender, never blocking)."""

from __future__ import annotations

from typing import Any

from fieldreport.sdk.context import current_recording, recording_from_headers
from fieldreport.sdk.handler import FieldreportHandler
from fieldreport.sdk.setup import default_handler

Scope = dict[str, Any]
ASGIApp = Any


class FieldreportASGIMiddleware:
    """Wrap any ASGI app (Starlette, FastAPI, Django's ASGI handler):

    ``app = FieldreportASGIMiddleware(app)`` or ``app.add_middleware(FieldreportASGIMiddleware)``.
    Uses the handler given, or the one :func:`fieldreport.sdk.setup` made.
    """

    def __init__(self, app: ASGIApp, handler: FieldreportHandler | None = None) -> None:
        self.app = app
        self._handler = handler

    @property
    def handler(self) -> FieldreportHandler | None:
        return self._handler or default_handler()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        recording = recording_from_headers(scope.get("headers") or [])
        if recording is None:
            await self.app(scope, receive, send)
            return
        token = current_recording.set(recording)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            handler = self.handler
            if handler is not None:
                handler.enqueue_exception(
                    exc,
                    recording,
                    {"method": scope.get("method", ""), "path": scope.get("path", "")},
                )
            raise
        finally:
            current_recording.reset(token)
