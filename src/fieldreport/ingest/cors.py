"""CORS for browser-facing endpoints, per project's allowed origins."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from fieldreport.ingest.errors import HTTPProblem

ALLOWED_HEADERS = "Content-Type, Content-Encoding, X-Fieldreport-Key, Authorization"


def normalize_origin(value: str) -> str:
    """``https://App.Example:443/`` -> ``https://app.example``; ValueError if not an origin."""
    if value == "*":
        return value
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an origin: {value!r} (expected e.g. https://app.example.com)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or credentials: {value!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{host}{port}"


@lru_cache(maxsize=1024)
def _request_origin(value: str) -> str:
    """A request's ``Origin`` header, normalized or ``"invalid"`` (a browser sends a handful of
    distinct values, so each is parsed once)."""
    try:
        return normalize_origin(value)
    except ValueError:
        return "invalid"


def request_origin(request: Request) -> str | None:
    return normalized_origin(request.headers.get("origin"))


def normalized_origin(origin: str | None) -> str | None:
    """An ``Origin`` header's value (``None``: not sent) as :func:`request_origin` gives it."""
    if origin is None or origin == "null":
        return origin
    return _request_origin(origin)


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    return origin is None or "*" in allowed or origin in allowed


def check_origin(request: Request, allowed: list[str], project_name: str) -> None:
    """Refuse a browser request from an origin the project does not allow (nothing is stored)."""
    origin = request_origin(request)
    if not origin_allowed(origin, allowed):
        raise HTTPProblem(
            403,
            f"origin {origin} is not allowed for this project; allow it with "
            f"`fieldreport project set {project_name} --origin {origin}`",
            code="origin_not_allowed",
        )


def cors_headers(request: Request, allowed: list[str]) -> dict[str, str]:
    return cors_headers_for(request.headers.get("origin"), allowed)


def cors_headers_for(origin_header: str | None, allowed: list[str]) -> dict[str, str]:
    """:func:`cors_headers` for a request whose ``Origin`` header is ``origin_header``."""
    origin = normalized_origin(origin_header)
    if origin_header is None or origin is None or not origin_allowed(origin, allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin_header,
        "Access-Control-Expose-Headers": "Location, Retry-After",
        "Vary": "Origin",
    }


def preflight_response(request: Request, allowed: bool) -> Response:
    if not allowed:
        return Response(status_code=403, headers={"Vary": "Origin"})
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": request.headers.get("origin", ""),
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )
