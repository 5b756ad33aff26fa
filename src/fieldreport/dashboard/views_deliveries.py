"""Deliveries in the dashboard: a report's deliveries and attempts, redelivery, the rendered
PDF, and each project's destinations (add, edit, test, health)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fieldreport.dashboard.access import NotVisible, visible_project, visible_report
from fieldreport.dashboard.auth import page
from fieldreport.dashboard.render import render
from fieldreport.delivery.destinations import check_destination, default_new, destination_dict
from fieldreport.delivery.formats import FORMATS
from fieldreport.delivery.loader import load_bundle
from fieldreport.delivery.policy import parse_schedule
from fieldreport.delivery.sample import sample_bundle
from fieldreport.delivery.urls import redact_url
from fieldreport.delivery.worker import Sender, render_pdf_async
from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import LoginSession
from fieldreport.storage.deliveries import attempts_of, get_delivery, list_deliveries, requeue
from fieldreport.storage.delivery_stats import destination_health
from fieldreport.storage.destinations import (
    add_destination,
    chain,
    get_destination,
    remove_destination,
    set_enabled,
)
from fieldreport.storage.projects import Project
from fieldreport.storage.schema.base import utcnow
from fieldreport.units import parse_duration

HEALTH_WINDOW = timedelta(days=1)


async def report_deliveries(request: Request, report_id: str) -> list[dict[str, Any]]:
    """The report's deliveries, each with its attempts (for the report page)."""
    async with app_state(request).db.read() as conn:
        found = await list_deliveries(conn, report_id=report_id, limit=20)
        return [{"delivery": d, "attempts": await attempts_of(conn, d.id)} for d in found]


@page()
async def redeliver(request: Request, login: LoginSession) -> Response:
    report = await visible_report(request, login)
    delivery_id = int(request.path_params["delivery_id"])
    async with app_state(request).db.write() as conn:
        found = await get_delivery(conn, delivery_id)
        if found is None or found.report_id != report.id:
            raise NotVisible
        queued = await requeue(conn, delivery_id, utcnow())
    if queued:
        app_state(request).delivery_wake.set()  # an in-process worker starts at once
    notice = "redelivery" if queued else "no-destination"
    return RedirectResponse(f"/reports/{report.id}?notice={notice}#deliveries", status_code=303)


@page()
async def report_pdf(request: Request, login: LoginSession) -> Response:
    report = await visible_report(request, login)
    state = app_state(request)
    bundle = await load_bundle(state, report.id)
    if bundle is None:
        raise NotVisible
    pdf = await render_pdf_async(bundle)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="report-{report.ticketnr}.pdf"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


async def destinations_context(request: Request, project: Project) -> dict[str, Any]:
    async with app_state(request).db.read() as conn:
        found = await chain(conn, project.id)
        health = await destination_health(
            conn, [d.id for d in found], since=utcnow() - HEALTH_WINDOW
        )
    return {
        "destinations": [
            {"d": destination_dict(d, primary=i == 0), "health": health.get(d.id)}
            for i, d in enumerate(found)
        ],
        "formats": FORMATS,
    }


def _back(project: Project, notice: str) -> RedirectResponse:
    return RedirectResponse(
        f"/projects/{project.id}/settings?notice={notice}#destinations", status_code=303
    )


async def _settings_with(
    request: Request, project: Project, status: int = 400, **extra: Any
) -> Response:
    from fieldreport.dashboard.views_projects import settings_context  # (import cycle)

    ctx = await settings_context(request, project)
    return render(request, "settings.html", {**ctx, **extra}, status=status)


@page(admin=True)
async def add_destination_submit(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    state = app_state(request)
    form = await request.form()
    url = str(form.get("url", "")).strip()
    fmt = str(form.get("format", "multipart"))
    try:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        new = dataclasses.replace(
            default_new(url),
            format=fmt,
            token=str(form.get("token", "")).strip() or None,
            secret=str(form.get("secret", "")).strip() or None,
            retry_schedule=parse_schedule(
                str(form.get("retry_schedule", "")).strip() or "0s,5s,5m,30m,2h,5h,10h,10h"
            ),
            timeout=parse_duration(str(form.get("timeout", "")).strip() or "15s"),
        )
        await check_destination(new, allow_private=state.settings.allow_private_destinations)
        async with state.db.write() as conn:
            existing = await chain(conn, project.id)
            await add_destination(conn, project.id, new, backup=bool(existing))
    except ValueError as exc:
        return await _settings_with(request, project, error=f"Destination not added: {exc}")
    return _back(project, "destination-added")


async def _own_destination(request: Request, project: Project) -> Any:
    raw = request.path_params.get("destination_id")
    async with app_state(request).db.read() as conn:
        found = await get_destination(conn, int(raw)) if isinstance(raw, int) else None
    if found is None or found.project_id != project.id:
        raise NotVisible
    return found


@page(admin=True)
async def destination_action(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    dest = await _own_destination(request, project)
    form = await request.form()
    action = str(form.get("action", ""))
    state = app_state(request)
    if action == "test":
        bundle = sample_bundle(project.name, state.public_url)
        target = dest
        if dest.format == "json" and "#" not in dest.url:
            target = dataclasses.replace(dest, url=dest.url + "#inline")
        sender = Sender(state)
        try:
            result = await sender.send(target, bundle)
        finally:
            await sender.close()
        return await _settings_with(
            request,
            project,
            status=200,
            test_result={"destination": redact_url(dest.url), "id": dest.id, "result": result},
        )
    async with state.db.write() as conn:
        if action == "disable":
            await set_enabled(conn, dest.id, False, "disabled in the dashboard")
        elif action == "enable":
            await set_enabled(conn, dest.id, True)
        elif action == "remove":
            await remove_destination(conn, dest.id)
        else:
            return await _settings_with(request, project, error="Unknown action.")
    done = {"disable": "disabled", "enable": "enabled", "remove": "removed"}[action]
    return _back(project, f"destination-{done}")


routes = [
    Route(
        "/reports/{report_id}/deliveries/{delivery_id:int}/redeliver",
        redeliver,
        methods=["POST"],
        include_in_schema=False,
    ),
    Route("/reports/{report_id}/report.pdf", report_pdf, methods=["GET"], include_in_schema=False),
    Route(
        "/projects/{project_id:int}/destinations",
        add_destination_submit,
        methods=["POST"],
        include_in_schema=False,
    ),
    Route(
        "/projects/{project_id:int}/destinations/{destination_id:int}",
        destination_action,
        methods=["POST"],
        include_in_schema=False,
    ),
]
