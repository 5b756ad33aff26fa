"""fieldreport's Python SDK: attach your backend's logs and exceptions to the recording of
the request that caused them. Needs only the standard library and httpx.

    import fieldreport.sdk as fieldreport
    fieldreport.setup("https://fieldreport.example.com", "frsec_...")
    app = fieldreport.FieldreportASGIMiddleware(app)          # or the WSGI one

See the README's "Python SDK" section for Django, Flask and FastAPI.
"""

from fieldreport.sdk.asgi import FieldreportASGIMiddleware
from fieldreport.sdk.client import (
    AsyncFieldreportClient,
    FieldreportClient,
    FieldreportError,
    SendResult,
)
from fieldreport.sdk.context import current_recording, get_recording
from fieldreport.sdk.handler import FieldreportHandler, HandlerStats
from fieldreport.sdk.setup import default_handler, setup
from fieldreport.sdk.wsgi import FieldreportWSGIMiddleware

__all__ = [
    "AsyncFieldreportClient",
    "FieldreportASGIMiddleware",
    "FieldreportClient",
    "FieldreportError",
    "FieldreportHandler",
    "FieldreportWSGIMiddleware",
    "HandlerStats",
    "SendResult",
    "current_recording",
    "default_handler",
    "get_recording",
    "setup",
]
