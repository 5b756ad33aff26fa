"""Query parameters of the read API's listings, checked the same way everywhere.

Every listing (reports, sessions, deliveries, a recording's backend events) takes a page
size and some bounds. A value that is not a whole number, or out of range, is a 400 that
names the parameter, the range it must be in and what was sent, so a caller can fix the
request without reading our source.
"""

from __future__ import annotations

from starlette.requests import Request

from fieldreport.ingest.errors import HTTPProblem

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def _raw(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    return None if raw is None or raw == "" else raw


def _whole(name: str, raw: str, rule: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise HTTPProblem(400, f"`{name}` must be {rule}, got {raw[:40]!r}") from None


def limit_param(request: Request, *, default: int, maximum: int) -> int:
    """``limit``: the page size, a whole number from 1 to ``maximum`` (``default`` if absent)."""
    raw = _raw(request, "limit")
    if raw is None:
        return default
    rule = f"a whole number from 1 to {maximum}"
    value = _whole("limit", raw, rule)
    if not 1 <= value <= maximum:
        raise HTTPProblem(400, f"`limit` must be {rule}, got {value}")
    return value


def int_param(request: Request, name: str, *, minimum: int | None = None) -> int | None:
    """An optional whole number (``None`` if absent), at least ``minimum`` if one is given.

    Values past the database's BIGINT range are clamped to it: "before 10**30" means
    "before anything", which the clamped value says too, where the raw one would make the
    driver raise.
    """
    raw = _raw(request, name)
    if raw is None:
        return None
    rule = "a whole number" if minimum is None else f"a whole number, at least {minimum}"
    value = _whole(name, raw, rule)
    if minimum is not None and value < minimum:
        raise HTTPProblem(400, f"`{name}` must be {rule}, got {value}")
    return max(BIGINT_MIN, min(value, BIGINT_MAX))
