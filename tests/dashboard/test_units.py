"""Pure parts of the dashboard: login rate limit decisions, JSON trees, charts, user agents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fieldreport.dashboard.charts import daily_bars
from fieldreport.dashboard.jsontree import json_tree, parse_json
from fieldreport.dashboard.ratelimit import LoginLimit, failure_keys, retry_after
from fieldreport.dashboard.useragent import parse_agent

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LIMIT = LoginLimit(max_failures=3, window=timedelta(minutes=15))


def test_retry_after_counts_a_sliding_window() -> None:
    email, ip = failure_keys("A@Example.com ", "10.0.0.1")
    assert email == "email:a@example.com" and ip == "ip:10.0.0.1"
    assert retry_after({email: (2, T0), ip: (2, T0)}, LIMIT, T0) is None
    # The third failure blocks until the oldest one leaves the window.
    assert retry_after({email: (3, T0), ip: (3, T0)}, LIMIT, T0 + timedelta(minutes=5)) == 600
    assert retry_after({email: (3, T0)}, LIMIT, T0 + timedelta(minutes=14, seconds=59.5)) == 1
    assert retry_after({email: (3, T0)}, LIMIT, T0 + timedelta(minutes=15)) is None
    # An address gets four times as many tries as an account.
    assert retry_after({ip: (11, T0)}, LIMIT, T0) is None
    assert retry_after({ip: (12, T0)}, LIMIT, T0) == 900


def test_json_tree_escapes_and_nests() -> None:
    html = str(json_tree({"<b>": ["x</li>", 1, None, True, {}], "deep": {"a": {"b": {"c": 1}}}}))
    assert "<b>" not in html and "x</li>" not in html
    assert "&#34;&lt;b&gt;&#34;" in html
    assert "5 items" in html and "[…]" in html
    assert html.count("<details open>") == 3  # the top two levels are open
    assert '<span class="j-null">null</span>' in html and '<span class="j-bool">true</span>' in html
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    assert "<code>" in str(json_tree(deep))  # very deep nesting falls back to raw JSON
    assert parse_json(' {"a": 1}') == (True, {"a": 1})
    assert parse_json("plain text")[0] is False and parse_json("[1,")[0] is False
    assert parse_json("42")[0] is False


def test_daily_bars() -> None:
    series = [(date(2026, 5, d), n) for d, n in ((1, 0), (2, 4), (3, 1))]
    svg = str(daily_bars(series))
    assert svg.count("<rect") == 3
    assert "<title>2026-05-02: 4 reports</title>" in svg
    assert 'aria-label="5 reports in the last 3 days"' in svg
    assert "peak 4" in svg
    assert str(daily_bars([])) == ""


def test_user_agents() -> None:
    iphone = parse_agent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
    )
    assert iphone.browser == "Mobile Safari 17.1"
    assert iphone.os == "iOS 17.1"
    assert iphone.device == "iPhone"
    firefox = parse_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
    assert firefox.browser == "Firefox 128.0" and firefox.os == "Linux"
    assert parse_agent("").browser == ""


def test_daily_bars_split_by_delivery_outcome() -> None:
    d1, d2 = date(2026, 5, 1), date(2026, 5, 2)
    svg = str(
        daily_bars(
            [(d1, 5), (d2, 2)],
            outcomes={d1: {"delivered": 3, "failed": 1, "dead": 1}, d2: {"pending": 2}},
        )
    )
    assert svg.count('<rect class="bar') == 2
    assert "<title>2026-05-01: 5 reports · 3 delivered · 1 in progress · 1 dead</title>" in svg
    assert svg.count('class="seg delivered"') == 1 and svg.count('class="seg dead"') == 1
    assert "<title>2026-05-02: 2 in progress</title>" in svg
