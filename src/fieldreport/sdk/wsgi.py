"""WSGI middleware: the request's recording into a context variable; unhandled exceptions
shipped to fieldreport (through the handler's background sender, never blocking)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fieldreport.sdk.context import current_recording, recording_from_environ
from fieldreport.sdk.handler import FieldreportHandler
from fieldreport.sdk.setup import default_handler

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class FieldreportWSGIMiddleware:
    """Wrap any WSGI app (Flask's ``app.wsgi_app``, Django's ``get_wsgi_application()``).

    Frameworks that turn exceptions into 500 pages themselves (Flask, Django) log them with
    their traceback: the logging handler ships those; this middleware ships the ones that
    escape the app. Each exception is sent once.
    """

    def __init__(self, app: WSGIApp, handler: FieldreportHandler | None = None) -> None:
        self.app = app
        self._handler = handler

    @property
    def handler(self) -> FieldreportHandler | None:
        return self._handler or default_handler()

    def _report(self, exc: BaseException, recording: str, environ: dict[str, Any]) -> None:
        handler = self.handler
        if handler is not None:
            handler.enqueue_exception(
                exc,
                recording,
                {
                    "method": environ.get("REQUEST_METHOD", ""),
                    "path": environ.get("PATH_INFO", ""),
                },
            )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        recording = recording_from_environ(environ)
        if recording is None:
            return self.app(environ, start_response)
        token = current_recording.set(recording)
        try:
            result = self.app(environ, start_response)
        except Exception as exc:
            self._report(exc, recording, environ)
            raise
        finally:
            current_recording.reset(token)
        return _Body(result, recording, lambda exc: self._report(exc, recording, environ))


class _Body:
    """The response body, iterated with the recording set (streaming responses log too)."""

    def __init__(
        self, result: Iterable[bytes], recording: str, report: Callable[[BaseException], None]
    ) -> None:
        self.result = result
        self.recording = recording
        self.report = report
        self._iter: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = current_recording.set(self.recording)
        try:
            if self._iter is None:
                self._iter = iter(self.result)
            return next(self._iter)
        except StopIteration:
            raise
        except Exception as exc:
            self.report(exc)
            raise
        finally:
            current_recording.reset(token)

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            token = current_recording.set(self.recording)
            try:
                close()
            finally:
                current_recording.reset(token)
