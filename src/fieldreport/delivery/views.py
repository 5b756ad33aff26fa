"""JSON views of deliveries and attempts, shared by the CLI and the API."""

from __future__ import annotations

from typing import Any

from fieldreport.storage.deliveries import Attempt, Delivery


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def delivery_dict(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "reportid": d.report_id,
        "ticketnr": d.ticketnr,
        "project": d.project_name,
        "project_id": d.project_id,
        "status": d.status,
        "destination_id": d.destination_id,
        "position": d.position,
        "attempts": d.attempts,
        "total_attempts": d.total_attempts,
        "next_attempt_at": _iso(d.next_attempt_at),
        "in_flight": d.lease_owner is not None,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": _iso(d.created_at),
        "updated_at": _iso(d.updated_at),
        "delivered_at": _iso(d.delivered_at),
    }


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "destination_id": a.destination_id,
        "destination": a.destination,
        "worker": a.worker,
        "started_at": _iso(a.started_at),
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "response_excerpt": a.response_excerpt,
        "error": a.error,
        "outcome": a.outcome,
    }
