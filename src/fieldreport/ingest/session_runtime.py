"""Per-app session machinery: the token signer and the rate limiters, built on first use."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request

from fieldreport.ingest.ratelimit import RateLimiter
from fieldreport.ingest.session_tokens import TokenSigner, load_secret
from fieldreport.state import AppState

WEB = "web"
MOBILE = ("ios", "android", "mobile")
PLATFORMS = (*MOBILE, WEB)


@dataclass
class SessionRuntime:
    signer: TokenSigner
    sessions_per_minute: RateLimiter
    bytes_per_minute: RateLimiter

    @classmethod
    def for_state(cls, state: AppState) -> SessionRuntime:
        settings = state.settings
        return cls(
            signer=TokenSigner(load_secret(settings)),
            sessions_per_minute=RateLimiter("sessions", settings.session_rate_sessions),
            bytes_per_minute=RateLimiter("bytes", settings.session_rate_bytes),
        )


def session_runtime(request: Request) -> SessionRuntime:
    return app_session_runtime(request.app)


def app_session_runtime(app: Starlette) -> SessionRuntime:
    """:func:`session_runtime` for plain ASGI endpoints (``scope["app"]``)."""
    app_st = app.state
    runtime = getattr(app_st, "session_runtime", None)
    if runtime is None:
        state = app_st.fieldreport
        assert isinstance(state, AppState)
        runtime = SessionRuntime.for_state(state)
        app_st.session_runtime = runtime
    assert isinstance(runtime, SessionRuntime)
    return runtime


def same_protocol(token_platform: str, platform: str) -> bool:
    """A mobile token works on every mobile prefix; a web token only on /v1/web."""
    if token_platform == WEB or platform == WEB:
        return token_platform == platform
    return True
