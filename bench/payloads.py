"""The request bodies the benchmarks send (deterministic, built once per run)."""

from __future__ import annotations

import io
import json
import random

from PIL import Image

BOUNDARY = "fieldreportbenchboundary7d1f3c"


def screenshot_png(target_bytes: int = 200_000) -> bytes:
    """A PNG of about ``target_bytes`` (noise does not compress, so the size is predictable)."""
    side = int((target_bytes / 3) ** 0.5)
    rng = random.Random(7)
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def report_multipart(screenshot: bytes) -> tuple[bytes, str]:
    """A report as a widget sends it: the screenshot and 11 text fields (12 form fields).
    Returns ``(body, content_type)``."""
    fields: list[tuple[str, str]] = [
        ("subject", "Checkout button does nothing"),
        ("sendercomment", "I pressed 'Pay now' twice and nothing happened. " * 4),
        ("senderemail", "jane.doe@example.com"),
        ("additionalinfo", json.dumps({"viewport": "1440x900", "lang": "en-GB", "build": 4121})),
        (
            "browser",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        ),
        ("referer", "https://shop.example.com/checkout?step=3"),
    ] + [("notelist[]", f"Note {i}: the spinner never stops") for i in range(1, 6)]
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
            f'name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="screen.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + screenshot
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={BOUNDARY}"


def pad_json(doc: dict[str, object], pad_field: str, size: int) -> bytes:
    """``doc`` as compact JSON, with ``doc[pad_field]`` (a string) padded to ``size`` bytes."""
    body = json.dumps(doc, separators=(",", ":")).encode()
    if len(body) < size:
        doc = {**doc, pad_field: str(doc[pad_field]) + "x" * (size - len(body))}
        body = json.dumps(doc, separators=(",", ":")).encode()
    return body


def fullstack_event(recording: str, size: int = 300) -> bytes:
    """A backend log line for ``POST /api/fullstack/v1/send`` (seed 001's fields)."""
    doc: dict[str, object] = {
        "uuid": recording,
        "type": "log",
        "payload": '{"a":1,"b":"a sample log text"}',
        "level": "info",
        "timestamp": 1622706694345,
        "metadata": '{"request_id":"7f3a"}',
        "title": "order created",
        "origin": "api-1",
    }
    return pad_json(doc, "payload", size)


def peer_event(size: int = 300) -> bytes:
    """A small Sentry-protocol event for the peer's store endpoint, ``size`` bytes, with an
    ``{id}`` marker the load generator replaces by a fresh event id per request."""
    doc: dict[str, object] = {
        "event_id": "{id}",
        "timestamp": 1622706694.345,
        "platform": "python",
        "level": "info",
        "logger": "api-1",
        "message": "order created",
        "extra": {"payload": '{"a":1,"b":"a sample log text"}'},
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    # the marker is 4 bytes, the id 32: pad so the bytes on the wire are ``size``
    pad = max(0, size - (len(body) + 28))
    doc["message"] = str(doc["message"]) + " " + "x" * max(0, pad - 1)
    return json.dumps(doc, separators=(",", ":")).encode()
