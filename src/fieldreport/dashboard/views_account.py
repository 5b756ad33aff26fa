"""Login, logout and changing one's password."""

from __future__ import annotations

import secrets
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fieldreport.dashboard.auth import (
    LOGIN_CSRF_COOKIE,
    current_login,
    end_login,
    page,
    request_ip,
    safe_next,
    secure_cookies,
    start_login,
    token_hash,
    tokens_match,
)
from fieldreport.dashboard.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from fieldreport.dashboard.ratelimit import LoginLimit, failure_keys, retry_after
from fieldreport.dashboard.render import render
from fieldreport.ingest.auth import app_state
from fieldreport.storage.accounts import (
    LoginSession,
    clear_login_failures,
    delete_user_sessions,
    login_failures_since,
    password_hash_for,
    record_login_failure,
    set_password,
)
from fieldreport.storage.schema.base import utcnow


def _login_form(
    request: Request, *, error: str = "", email: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    next_path = safe_next(request.query_params.get("next"))
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "error": error, "email": email, "next": next_path},
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        secure=secure_cookies(app_state(request)),
        samesite="strict",
    )
    return response


async def login_page(request: Request) -> Response:
    if await current_login(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


async def login_submit(request: Request) -> Response:
    state = app_state(request)
    form = await request.form()
    email = str(form.get("email", "")).strip()[:320]
    password = str(form.get("password", ""))[:1024]
    given = form.get("csrf")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not tokens_match(expected, given if isinstance(given, str) else None):
        return _login_form(
            request, error="The login form expired. Please try again.", email=email, status=403
        )
    if not email or not password:
        return _login_form(request, error="Enter your email and password.", email=email, status=400)

    limit = LoginLimit(
        state.settings.login_max_failures, timedelta(seconds=state.settings.login_window)
    )
    keys = failure_keys(email, request_ip(request))
    now = utcnow()
    async with state.db.read() as conn:
        failures = await login_failures_since(conn, keys, now - limit.window)
        found = await password_hash_for(conn, email)
    wait = retry_after(failures, limit, now)
    if wait is not None:
        minutes = max(1, -(-wait // 60))
        return render(
            request,
            "login.html",
            {
                "login_csrf": expected,
                "email": email,
                "next": safe_next(request.query_params.get("next")),
                "error": f"Too many failed logins. Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}.",
            },
            status=429,
            headers={"Retry-After": str(wait)},
        )
    stored = found[1] if found else None
    if not await verify_password(stored, password) or found is None:
        async with state.db.write() as conn:
            await record_login_failure(conn, keys, now)
        return _login_form(request, error="Wrong email or password.", email=email, status=401)

    user = found[0]
    async with state.db.write() as conn:
        await clear_login_failures(conn, keys[:1], before=now - limit.window)
        if stored is not None and needs_rehash(stored):
            await set_password(
                conn, user.id, await hash_password(password), must_change=user.must_change_password
            )
    target = (
        "/account/password"
        if user.must_change_password
        else safe_next(request.query_params.get("next"))
    )
    response = RedirectResponse(target, status_code=303)
    await start_login(request, response, user.id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@page()
async def logout(request: Request, login: LoginSession) -> Response:
    response = RedirectResponse("/login", status_code=303)
    await end_login(request, response)
    return response


@page(password_change=True)
async def password_page(request: Request, login: LoginSession) -> Response:
    return render(request, "password.html", {"forced": login.user.must_change_password})


@page(password_change=True)
async def password_submit(request: Request, login: LoginSession) -> Response:
    state = app_state(request)
    form = await request.form()
    current = str(form.get("current", ""))
    new = str(form.get("new", ""))
    repeat = str(form.get("repeat", ""))

    def again(error: str, status: int = 400) -> Response:
        return render(
            request,
            "password.html",
            {"forced": login.user.must_change_password, "error": error},
            status=status,
        )

    async with state.db.read() as conn:
        found = await password_hash_for(conn, login.user.email)
    if found is None or not await verify_password(found[1], current):
        return again("Your current password is not right.", 403)
    problem = password_problem(new)
    if problem:
        return again(problem.capitalize() + ".")
    if new != repeat:
        return again("The new passwords do not match.")
    if new == current:
        return again("Choose a password different from the current one.")
    token = request.cookies.get("fieldreport_session", "")
    async with state.db.write() as conn:
        await set_password(conn, login.user.id, await hash_password(new))
        # Other browsers logged in with the old password are logged out.
        await delete_user_sessions(conn, login.user.id, keep_token_hash=token_hash(token))
    return RedirectResponse("/?notice=password", status_code=303)


routes = [
    Route("/login", login_page, methods=["GET"], include_in_schema=False),
    Route("/login", login_submit, methods=["POST"], include_in_schema=False),
    Route("/logout", logout, methods=["POST"], include_in_schema=False),
    Route("/account/password", password_page, methods=["GET"], include_in_schema=False),
    Route("/account/password", password_submit, methods=["POST"], include_in_schema=False),
]
