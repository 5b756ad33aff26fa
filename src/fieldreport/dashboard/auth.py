"""Dashboard logins: session cookies, CSRF tokens and the ``page`` decorator.

The session cookie holds 256 random bits; the database keeps only their SHA-256, together
with the session's CSRF token. Every POST must carry that token in the form field ``csrf``
(the login form, which has no session yet, uses a double-submit cookie instead). Cookies
are HttpOnly, SameSite=Lax, and Secure whenever the public URL is https.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fieldreport.dashboard.access import NotVisible
from fieldreport.dashboard.render import error_page
from fieldreport.ingest.auth import app_state
from fieldreport.ingest.clientip import client_ip
from fieldreport.state import AppState
from fieldreport.storage.accounts import (
    LoginSession,
    create_session,
    delete_session,
    session_by_token_hash,
)
from fieldreport.storage.schema.base import utcnow

SESSION_COOKIE = "fieldreport_session"
LOGIN_CSRF_COOKIE = "fieldreport_login_csrf"

Handler = Callable[[Request, LoginSession], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def secure_cookies(state: AppState) -> bool:
    return state.public_url.startswith("https://")


def request_ip(request: Request) -> str:
    return client_ip(request.scope, app_state(request).settings.trusted_proxy_networks)


def safe_next(target: str | None) -> str:
    """Only local absolute paths: never another site (open redirect) or a scheme."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def current_login(request: Request) -> LoginSession | None:
    cached = getattr(request.state, "login", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    async with app_state(request).db.read() as conn:
        found = await session_by_token_hash(conn, token_hash(token), utcnow())
    request.state.login = found
    return found


async def start_login(request: Request, response: Response, user_id: int) -> None:
    """Create a session for ``user_id`` and set its cookie on ``response``."""
    state = app_state(request)
    token = secrets.token_urlsafe(32)
    max_age = timedelta(seconds=state.settings.login_max_age)
    async with state.db.write() as conn:
        await create_session(
            conn,
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            now=utcnow(),
            max_age=max_age,
            ip=request_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(max_age.total_seconds()),
        path="/",
        httponly=True,
        secure=secure_cookies(state),
        samesite="lax",
    )


async def end_login(request: Request, response: Response) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with app_state(request).db.write() as conn:
            await delete_session(conn, token_hash(token))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def csrf_ok(request: Request, login: LoginSession) -> bool:
    form = await request.form()
    given = form.get("csrf")
    return tokens_match(login.csrf_token, given if isinstance(given, str) else None)


def page(*, admin: bool = False, password_change: bool = False) -> Callable[[Handler], Endpoint]:
    """Wrap a dashboard handler: require a login (redirecting to /login and back), an
    admin when ``admin``, a valid CSRF token on POST, and a fresh password after a
    one-time one."""

    def decorate(handler: Handler) -> Endpoint:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            login = await current_login(request)
            if login is None:
                if request.method != "GET":
                    return RedirectResponse("/login", status_code=303)
                return login_redirect(request)
            if login.user.must_change_password and not password_change:
                return RedirectResponse("/account/password", status_code=303)
            if admin and not login.user.is_admin:
                return error_page(request, 403, "Not allowed", "Only administrators may do this.")
            if request.method == "POST" and not await csrf_ok(request, login):
                return error_page(
                    request,
                    403,
                    "Form expired",
                    "This form's security token is missing or stale. Go back, reload the "
                    "page and try again.",
                )
            try:
                return await handler(request, login)
            except NotVisible:
                return error_page(
                    request, 404, "Not found", "There is nothing here, or you may not see it."
                )

        return endpoint

    return decorate
