from __future__ import annotations

import pytest

from fieldreport.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [("1024", 1024), ("20MiB", 20 * 1024**2), ("1.5 KiB", 1536), ("2GB", 2 * 10**9), ("7b", 7)],
)
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("5m", 300),
        ("2h", 7200),
        ("30d", 2592000),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("12", 12),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "5 parsecs", "-3", "1h junk"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_bad_size() -> None:
    with pytest.raises(ValueError):
        parse_size("lots")


def test_format_roundtrip() -> None:
    for seconds in (0, 5, 300, 5400, 36000, 90061):
        assert parse_duration(format_duration(seconds)) == seconds
