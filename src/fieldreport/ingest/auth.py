"""Finding the project a request belongs to, by its public or secret key."""

from __future__ import annotations

from starlette.requests import Request

from fieldreport.ingest.errors import HTTPProblem, unauthorized
from fieldreport.state import AppState
from fieldreport.storage.projects import Project, find_by_key


def bearer_token(request: Request) -> str | None:
    return bearer_from_header(request.headers.get("authorization", ""))


def bearer_from_header(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header's value."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def project_for_secret_key(state: AppState, request: Request) -> Project:
    """Authenticate a backend API call by ``Authorization: Bearer <secret key>``."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing secret key: send `Authorization: Bearer <secret key>`")
    project = await state.db.run_read(find_by_key, token, "secret")
    if project is None:
        raise unauthorized("unknown secret key")
    return project


async def project_for_listing(state: AppState, request: Request) -> Project:
    """The secret key's project, refusing a ``?project=`` that names another one."""
    project = await project_for_secret_key(state, request)
    wanted = request.query_params.get("project")
    if wanted is not None and wanted not in (project.name, str(project.id)):
        raise HTTPProblem(403, "this key belongs to another project", code="forbidden")
    return project


def app_state(request: Request) -> AppState:
    state = request.app.state.fieldreport
    assert isinstance(state, AppState)
    return state
