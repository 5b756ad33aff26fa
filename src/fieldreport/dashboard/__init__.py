"""The dashboard: server-rendered pages (Jinja2) for people who read reports."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from fieldreport.dashboard import (
    views_account,
    views_deliveries,
    views_projects,
    views_replay,
    views_reports,
)

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    return [
        *views_account.routes,
        *views_projects.routes,
        *views_reports.routes,
        *views_deliveries.routes,
        *views_replay.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
