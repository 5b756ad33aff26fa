"""The projects overview, creating projects, and project settings (keys, origins, members)."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fieldreport.dashboard.access import visible_project
from fieldreport.dashboard.auth import page
from fieldreport.dashboard.charts import daily_bars
from fieldreport.dashboard.render import render
from fieldreport.dashboard.views_deliveries import destinations_context
from fieldreport.ingest.auth import app_state
from fieldreport.ingest.cors import normalize_origin
from fieldreport.keys import KeyKind
from fieldreport.storage.accounts import (
    LoginSession,
    add_member,
    get_user,
    list_members,
    list_users,
    remove_member,
    visible_project_ids,
)
from fieldreport.storage.delivery_stats import delivery_outcomes_per_day
from fieldreport.storage.projects import (
    Project,
    ProjectExists,
    create_project,
    get_project,
    list_projects,
    rotate_key,
    set_origins,
)
from fieldreport.storage.report_search import reports_per_day
from fieldreport.storage.reports import count_reports
from fieldreport.storage.schema.base import utcnow

CHART_DAYS = 30
NOTICES = {
    "password": "Your password was changed.",
    "origin-added": "The origin is now allowed.",
    "origin-removed": "The origin is no longer allowed.",
    "member-added": "The member was added.",
    "member-removed": "The member was removed.",
    "destination-added": "The destination was added.",
    "destination-enabled": "The destination is enabled again.",
    "destination-disabled": "The destination is disabled: reports skip it.",
    "destination-removed": "The destination was removed.",
}


def notice(request: Request) -> str:
    return NOTICES.get(request.query_params.get("notice", ""), "")


def _outcome_totals(per_day: dict[date, dict[str, int]]) -> dict[str, int] | None:
    if not per_day:
        return None
    total: dict[str, int] = {}
    for statuses in per_day.values():
        for status, n in statuses.items():
            total[status] = total.get(status, 0) + n
    return {
        "delivered": total.get("delivered", 0),
        "progress": total.get("pending", 0) + total.get("failed", 0),
        "dead": total.get("dead", 0),
    }


@page()
async def projects_page(request: Request, login: LoginSession) -> Response:
    state = app_state(request)
    async with state.db.read() as conn:
        ids = set(await visible_project_ids(conn, login.user))
        shown = [p for p in await list_projects(conn) if p.id in ids]
        series = await reports_per_day(
            conn, [p.id for p in shown], days=CHART_DAYS, today=utcnow().date()
        )
        totals = {p.id: await count_reports(conn, p.id) for p in shown}
        outcomes = await delivery_outcomes_per_day(
            conn, [p.id for p in shown], days=CHART_DAYS, today=utcnow().date()
        )
    cards = [
        {
            "project": p,
            "total": totals[p.id],
            "recent": sum(n for _, n in series[p.id]),
            "chart": daily_bars(series[p.id], outcomes=outcomes[p.id]),
            "outcomes": _outcome_totals(outcomes[p.id]),
        }
        for p in shown
    ]
    return render(
        request,
        "projects.html",
        {"cards": cards, "days": CHART_DAYS, "notice": notice(request)},
    )


@page(admin=True)
async def create_project_submit(request: Request, login: LoginSession) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    if not name or len(name) > 200:
        return render(
            request, "project_new.html", {"error": "A name has 1 to 200 characters."}, status=400
        )
    try:
        async with app_state(request).db.write() as conn:
            created = await create_project(conn, name)
    except ProjectExists as exc:
        return render(request, "project_new.html", {"error": str(exc), "name": name}, status=409)
    # The keys are shown this once (they are stored hashed), so no redirect here.
    return render(
        request,
        "project_created.html",
        {
            "project": created.project,
            "public_key": created.public_key,
            "secret_key": created.secret_key,
        },
        status=201,
    )


@page(admin=True)
async def new_project_page(request: Request, login: LoginSession) -> Response:
    return render(request, "project_new.html", {})


async def settings_context(request: Request, project: Project) -> dict[str, object]:
    async with app_state(request).db.read() as conn:
        members = await list_members(conn, project.id)
        member_ids = {m.id for m in members}
        others = [u for u in await list_users(conn) if u.id not in member_ids]
    destinations = await destinations_context(request, project)
    return {"project": project, "members": members, "others": others, **destinations}


@page(admin=True)
async def settings_page(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    ctx = await settings_context(request, project)
    return render(request, "settings.html", {**ctx, "notice": notice(request)})


async def _settings_error(request: Request, project: Project, error: str) -> Response:
    ctx = await settings_context(request, project)
    return render(request, "settings.html", {**ctx, "error": error}, status=400)


@page(admin=True)
async def rotate_key_submit(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    form = await request.form()
    which = str(form.get("kind", ""))
    if which not in ("public", "secret"):
        return await _settings_error(request, project, "Choose the public or the secret key.")
    kind: KeyKind = "public" if which == "public" else "secret"
    async with app_state(request).db.write() as conn:
        key = await rotate_key(conn, project.id, kind)
        refreshed = await get_project(conn, project.id)
    ctx = await settings_context(request, refreshed or project)
    return render(request, "settings.html", {**ctx, "new_key": key, "new_key_kind": kind})


@page(admin=True)
async def origins_submit(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    form = await request.form()
    add = str(form.get("add", "")).strip()
    remove = str(form.get("remove", "")).strip()
    try:
        to_add = [normalize_origin(add)] if add else []
        to_remove = [normalize_origin(remove)] if remove else []
    except ValueError as exc:
        return await _settings_error(request, project, str(exc))
    if not to_add and not to_remove:
        return await _settings_error(
            request, project, "Enter an origin such as https://app.example.com."
        )
    async with app_state(request).db.write() as conn:
        await set_origins(conn, project.id, add=to_add, remove=to_remove)
    done = "origin-added" if to_add else "origin-removed"
    return RedirectResponse(f"/projects/{project.id}/settings?notice={done}", status_code=303)


@page(admin=True)
async def members_submit(request: Request, login: LoginSession) -> Response:
    project = await visible_project(request, login)
    form = await request.form()
    add = str(form.get("add", "")).strip()
    remove = str(form.get("remove", "")).strip()
    async with app_state(request).db.write() as conn:
        if add:
            user = await get_user(conn, add)
            if user is None:
                error = f"No user {add!r}: create it with `fieldreport user create {add}`."
            else:
                await add_member(conn, project.id, user.id)
                error = ""
        elif remove.isdigit():
            await remove_member(conn, project.id, int(remove))
            error = ""
        else:
            error = "Choose a user."
    if error:
        return await _settings_error(request, project, error)
    done = "member-added" if add else "member-removed"
    return RedirectResponse(f"/projects/{project.id}/settings?notice={done}", status_code=303)


routes = [
    Route("/", projects_page, methods=["GET"], include_in_schema=False),
    Route("/projects/new", new_project_page, methods=["GET"], include_in_schema=False),
    Route("/projects", create_project_submit, methods=["POST"], include_in_schema=False),
    Route(
        "/projects/{project_id:int}/settings",
        settings_page,
        methods=["GET"],
        include_in_schema=False,
    ),
    Route(
        "/projects/{project_id:int}/keys",
        rotate_key_submit,
        methods=["POST"],
        include_in_schema=False,
    ),
    Route(
        "/projects/{project_id:int}/origins",
        origins_submit,
        methods=["POST"],
        include_in_schema=False,
    ),
    Route(
        "/projects/{project_id:int}/members",
        members_submit,
        methods=["POST"],
        include_in_schema=False,
    ),
]
