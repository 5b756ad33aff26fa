"""Problem responses: every error is JSON ``{"error": message, "code": code}``."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class HTTPProblem(Exception):
    """Raise anywhere in a handler to answer with a JSON error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "bad_request",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def problem_response(problem: HTTPProblem) -> JSONResponse:
    return JSONResponse(
        {"error": problem.message, "code": problem.code},
        status_code=problem.status,
        headers=problem.headers,
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPProblem)
    return problem_response(exc)


def unauthorized(message: str = "missing or invalid key") -> HTTPProblem:
    return HTTPProblem(401, message, code="unauthorized", headers={"WWW-Authenticate": "Bearer"})


def not_found(message: str) -> HTTPProblem:
    return HTTPProblem(404, message, code="not_found")


def too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(
        413, f"request body is larger than the limit of {limit} bytes", code="too_large"
    )


def unavailable(message: str, retry_after: int = 5) -> HTTPProblem:
    return HTTPProblem(503, message, code="unavailable", headers={"Retry-After": str(retry_after)})


def storage_unavailable(exc: Exception) -> HTTPProblem:
    """The blob store failed: 507 when it is full, else 503; try again in 30 s."""
    return HTTPProblem(
        507 if "full" in str(exc) else 503,
        f"storage unavailable: {exc}",
        code="storage_unavailable",
        headers={"Retry-After": "30"},
    )
