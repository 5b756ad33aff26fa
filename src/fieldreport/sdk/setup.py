"""One call to wire fieldreport into an app's logging: :func:`setup`."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from fieldreport.sdk.client import FieldreportClient
from fieldreport.sdk.handler import FieldreportHandler

_default: FieldreportHandler | None = None


def setup(
    url: str,
    secret_key: str,
    *,
    level: int = logging.INFO,
    logger: logging.Logger | None = None,
    origin: str | None = None,
    **handler_options: Any,
) -> FieldreportHandler:
    """Create the handler, attach it to ``logger`` (default: the root logger), make it the
    one the middleware uses, and flush it at interpreter exit. Returns the handler."""
    global _default
    client = FieldreportClient(url, secret_key, origin=origin)
    handler = FieldreportHandler(client, level=level, **handler_options)
    (logger or logging.getLogger()).addHandler(handler)
    if _default is not None:
        _default.close()
    _default = handler
    atexit.register(handler.close)
    return handler


def default_handler() -> FieldreportHandler | None:
    """The handler :func:`setup` made, else the first one on the root logger (e.g. made by
    Django's ``LOGGING`` dict), else None."""
    if _default is not None:
        return _default
    for handler in logging.getLogger().handlers:
        if isinstance(handler, FieldreportHandler):
            return handler
    return None
