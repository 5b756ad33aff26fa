"""Validating full-stack events (seed 001) and the seed's answer bodies.

Every problem with an event is reported, one error entry each, in the seed's shape:
``{"success": "false", "error": [{"error_name": "", "message": "..."}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldreport.storage.backend_events import EVENT_TYPES, BackendEvent, NewEvent

NO_RECORDING = "No BugReplay-Recording-UUID, doing nothing"
NOT_LOGGED_IN = ("ErrUserNotLoggedIn", "User is not logged in!")
TYPE_MESSAGE = "Type must be 'log' or 'exception'"

# Unix milliseconds below 1e11 are before March 1973: almost surely seconds. Above 1e14
# (year 5138) they are microseconds or nanoseconds.
MIN_MILLIS = 100_000_000_000
MAX_MILLIS = 100_000_000_000_000
MAX_UUID = 64
MAX_LEVEL = 32
MAX_TITLE = 2000
MAX_ORIGIN = 500

ErrorEntry = dict[str, str]


def error_body(*messages: str, name: str = "") -> dict[str, Any]:
    return {
        "success": "false",
        "error": [{"error_name": name, "message": message} for message in messages],
    }


def error_entries_body(entries: list[ErrorEntry]) -> dict[str, Any]:
    return {"success": "false", "error": entries}


def ok_body(event: BackendEvent) -> dict[str, Any]:
    """The seed's success body, key for key."""
    return {
        "success": "true",
        "data": {
            "data": {
                "ok": {
                    "id": event.id,
                    "timestamp": event.timestamp,
                    "type": event.type,
                    "title": event.title,
                    "payload": event.payload,
                    "uuid": event.recording,
                    "metadata": event.metadata,
                    "origin": event.origin,
                }
            },
            "success": True,
        },
    }


@dataclass(frozen=True)
class Checked:
    event: NewEvent | None
    errors: list[str]


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _optional_text(
    item: dict[str, Any], name: str, label: str, max_chars: int, errors: list[str]
) -> str:
    value = item.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"{label} must be a string")
        return ""
    if len(value) > max_chars:
        errors.append(f"{label} must be at most {max_chars} characters")
    return value


def check_event(item: Any, project_id: int, *, max_payload: int) -> Checked:
    """Validate one event object; collect every problem."""
    if not isinstance(item, dict):
        return Checked(None, ["The event must be a JSON object"])
    errors: list[str] = []

    recording = item.get("uuid")
    if recording is None or recording == "":
        errors.append("UUID is required: the br-recording-uuid header of the recorded request")
        recording = ""
    elif not isinstance(recording, str):
        errors.append("UUID must be a string")
        recording = ""
    elif len(recording) > MAX_UUID:
        errors.append(f"UUID must be at most {MAX_UUID} characters")
    recording = recording.strip() if isinstance(recording, str) else ""

    kind = item.get("type")
    if kind not in EVENT_TYPES:
        errors.append(TYPE_MESSAGE)

    timestamp = item.get("timestamp")
    if timestamp is None:
        errors.append("Timestamp is required: unix milliseconds as an integer")
    elif isinstance(timestamp, bool) or not isinstance(timestamp, int):
        errors.append("Timestamp must be an integer (unix milliseconds)")
    elif timestamp < MIN_MILLIS:
        errors.append(
            f"Timestamp {timestamp} looks like seconds: send unix milliseconds (e.g. 1622706694345)"
        )
    elif timestamp > MAX_MILLIS:
        errors.append(
            f"Timestamp {timestamp} looks like microseconds or nanoseconds: send unix "
            "milliseconds (e.g. 1622706694345)"
        )

    payload = item.get("payload")
    if payload is None:
        errors.append("Payload is required (a string: text, XML or JSON)")
        payload = ""
    elif not isinstance(payload, str):
        errors.append("Payload must be a string (serialize JSON payloads to a string)")
        payload = ""
    elif (size := _utf8_len(payload)) > max_payload:
        errors.append(f"Payload is {size} bytes, over the limit of {max_payload} bytes")

    metadata = item.get("metadata")
    if metadata is None:
        metadata = ""
    elif not isinstance(metadata, str):
        errors.append("Metadata must be a string (serialize JSON metadata to a string)")
        metadata = ""
    elif (size := _utf8_len(metadata)) > max_payload:
        errors.append(f"Metadata is {size} bytes, over the limit of {max_payload} bytes")

    level = _optional_text(item, "level", "Level", MAX_LEVEL, errors).strip().lower()
    title = _optional_text(item, "title", "Title", MAX_TITLE, errors)
    origin = _optional_text(item, "origin", "Origin", MAX_ORIGIN, errors)

    if errors:
        return Checked(None, errors)
    assert isinstance(kind, str) and isinstance(timestamp, int)
    return Checked(
        NewEvent(
            project_id=project_id,
            recording=recording,
            type=kind,
            level=level or ("error" if kind == "exception" else "info"),
            timestamp=timestamp,
            title=title,
            payload=payload,
            metadata=metadata,
            origin=origin,
        ),
        [],
    )
