"""A minimal Django site configured as the README says, served by werkzeug on loopback.

    python -m tests.support.django_site PORT      (env: FR_URL, FR_SECRET_KEY)

Prints "ready" once listening. Used by tests/sdk/test_django.py in a child process, since
Django's settings are process-wide.
"""

from __future__ import annotations

import logging
import os
import sys

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path


def checkout(request: HttpRequest) -> HttpResponse:
    logging.getLogger("shop").info("charging card for order %d", 7)
    from fieldreport.sdk import get_recording

    return HttpResponse(get_recording() or "none", content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise ValueError("card declined")


urlpatterns = [path("checkout", checkout), path("boom", boom)]


def main() -> None:
    port = int(sys.argv[1])
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="test-only",
        # --- as in the README -----------------------------------------------------------
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "fieldreport": {
                    "()": "fieldreport.sdk.FieldreportHandler",
                    "url": os.environ["FR_URL"],
                    "secret_key": os.environ["FR_SECRET_KEY"],
                    "flush_interval": 0.1,
                },
            },
            "root": {"handlers": ["fieldreport"], "level": "INFO"},
        },
    )
    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import make_server

    from fieldreport.sdk import FieldreportWSGIMiddleware

    application = FieldreportWSGIMiddleware(get_wsgi_application())
    # ---------------------------------------------------------------------------------------
    assert django.VERSION >= (4, 2)
    server = make_server("127.0.0.1", port, application, threaded=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
