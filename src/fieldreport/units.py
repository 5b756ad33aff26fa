"""Parsing of human-friendly sizes (``20MiB``) and durations (``15s``, ``2h``, ``30d``)."""

from __future__ import annotations

import re
from datetime import timedelta

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
}

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_size(value: str | int) -> int:
    """``"20MiB"`` -> 20971520; plain integers are bytes."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r} (examples: 1048576, 512KiB, 20MiB, 1GB)")
    unit = (match.group(2) or "").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_duration(value: str | float | int | timedelta) -> float:
    """``"1h30m"`` -> 5400.0 seconds; plain numbers are seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = value.strip()
    try:
        return parse_duration(float(text))
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if text[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"not a duration: {value!r} (examples: 15s, 5m, 2h, 30d, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    """5400 -> ``"1h30m"`` (the inverse of :func:`parse_duration` for whole units)."""
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    remaining = seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count = int(remaining // size)
        if count:
            parts.append(f"{count}{unit}")
            remaining -= count * size
    if remaining > 0.0005:
        parts.append(f"{round(remaining * 1000)}ms")
    return "".join(parts)
