"""The project of a report's public key, remembered briefly (no database read per report).

Looking the key up (the project, then its origins) cost every report a read in a reader
thread and a thread hop (~0.6 ms of CPU; on PostgreSQL a ``run_sync`` round trip). As the
full-stack API does with secret keys (:mod:`fieldreport.ingest.keycache`),
reports remember ``public key hash -> project`` for a minute, and the cache is
only a hint: the writer's transaction checks again, before it inserts the report, that the
key still belongs to the project and that the request's origin is still allowed
(:func:`fieldreport.storage.report_writer.write_reports`). A rotated key or a removed origin
is therefore refused at once, cached or not, with the answer a fresh lookup would give.

Only positive answers come from the cache: a key it does not know, or an origin the cached
entry does not allow (it may have been added a moment ago), is looked up in the database.
"""

from __future__ import annotations

from starlette.requests import Request

from fieldreport.ingest.auth import app_state
from fieldreport.ingest.cors import check_origin, origin_allowed, request_origin
from fieldreport.ingest.errors import HTTPProblem, unauthorized
from fieldreport.ingest.keycache import KeyCache
from fieldreport.keys import hash_key
from fieldreport.state import AppState
from fieldreport.storage.projects import Project, find_by_key
from fieldreport.storage.report_writer import Refusal

#: The cache of public key hash -> project (with its origins).
ProjectCache = KeyCache[Project]


class _Holder:
    """The app's cache, tied to its state (a test app may get a new state)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.cache: ProjectCache = KeyCache()


def report_keys(request: Request) -> ProjectCache:
    """The cache of the app serving ``request``."""
    app_state_ns = request.app.state
    state = app_state(request)
    holder: _Holder | None = getattr(app_state_ns, "report_keys", None)
    if holder is None or holder.state is not state:
        holder = app_state_ns.report_keys = _Holder(state)
    return holder.cache


def missing_key() -> HTTPProblem:
    return unauthorized(
        "missing project key: send the public key in X-Fieldreport-Key or the form field `key`"
    )


def unknown_key() -> HTTPProblem:
    return unauthorized("unknown project key")


async def authorize_report(request: Request, key: str | None) -> tuple[Project, str]:
    """The project of ``key`` and the key's hash, refusing a missing or unknown key (401)
    and an origin the project does not allow (403), as :func:`check_origin` does."""
    if not key:
        raise missing_key()
    key_hash = hash_key(key)
    cache = report_keys(request)
    project = cache.get(key_hash)
    if project is None or not origin_allowed(request_origin(request), project.origins):
        state = app_state(request)
        project = await state.db.run_read(find_by_key, key, "public")
        if project is None:
            cache.forget(key_hash)
            raise unknown_key()
        cache.put(key_hash, project)
    check_origin(request, project.origins, project.name)
    return project, key_hash


def refusal(request: Request, reason: Refusal, project: Project) -> HTTPProblem:
    """The 401 or 403 for a report the writer refused (see :class:`KeyRefused`): what
    :func:`authorize_report` answers for an unknown key or an origin the project does not
    allow."""
    if reason == "origin":
        try:
            check_origin(request, [], project.name)
        except HTTPProblem as problem:
            return problem
    return unknown_key()
