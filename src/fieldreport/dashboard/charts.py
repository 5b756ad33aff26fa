"""Small server-rendered SVG bar charts (no JavaScript, no chart library)."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup

WIDTH, HEIGHT = 300, 76
PAD_TOP, PAD_BOTTOM = 16, 14


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return value


# Delivery outcomes stacked from the bottom of each day's bar (the rest keeps the bar color).
SEGMENTS = (("delivered", "delivered"), ("in progress", "progress"), ("dead", "dead"))


def _outcomes(raw: dict[str, int]) -> dict[str, int]:
    return {
        "delivered": raw.get("delivered", 0),
        "in progress": raw.get("pending", 0) + raw.get("failed", 0),
        "dead": raw.get("dead", 0),
    }


def daily_bars(
    series: list[tuple[date, int]],
    *,
    label: str = "reports",
    outcomes: dict[date, dict[str, int]] | None = None,
) -> Markup:
    """A bar per day; every bar has a <title> tooltip, the chart an accessible summary.
    With ``outcomes`` (delivery statuses per day), each bar is split by delivery outcome."""
    if not series:
        return Markup("")
    total = sum(n for _, n in series)
    top = _nice_max(max((n for _, n in series), default=0) or 1)
    slot = WIDTH / len(series)
    bar = max(1.0, slot - 2)
    plot = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [
        Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            'aria-label="{total} {label} in the last {days} days" '
            'xmlns="http://www.w3.org/2000/svg">'
        ).format(w=WIDTH, h=HEIGHT, total=total, label=label, days=len(series)),
        Markup('<line class="axis" x1="0" y1="{y}" x2="{w}" y2="{y}"/>').format(
            y=HEIGHT - PAD_BOTTOM + 0.5, w=WIDTH
        ),
    ]
    for i, (day, count) in enumerate(series):
        height = plot * count / top
        x = i * slot + 1
        y = HEIGHT - PAD_BOTTOM - height
        split = _outcomes(outcomes.get(day, {})) if outcomes is not None else {}
        tip = "".join(f" · {n} {name}" for name, n in split.items() if n)
        parts.append(
            Markup(
                '<rect class="bar{empty}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
                'height="{bh:.1f}"><title>{day}: {count} {label}{tip}</title></rect>'
            ).format(
                tip=tip,
                empty=" empty" if count == 0 else "",
                x=x,
                y=y if count else HEIGHT - PAD_BOTTOM - 1,
                bw=bar,
                bh=height if count else 1,
                day=day.isoformat(),
                count=count,
                label=label,
            )
        )
        bottom: float = HEIGHT - PAD_BOTTOM
        for name, css in SEGMENTS:
            n = min(split.get(name, 0), count)
            if n <= 0:
                continue
            seg = plot * n / top
            bottom -= seg
            parts.append(
                Markup(
                    '<rect class="seg {css}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
                    'height="{bh:.1f}"><title>{day}: {n} {name}</title></rect>'
                ).format(
                    css=css, x=x, y=bottom, bw=bar, bh=seg, day=day.isoformat(), n=n, name=name
                )
            )
    first, last = series[0][0], series[-1][0]
    parts.append(
        Markup(
            '<text class="tick" x="0" y="{y}">{a}</text>'
            '<text class="tick" x="{w}" y="{y}" text-anchor="end">{b}</text>'
            '<text class="tick" x="{w}" y="10" text-anchor="end">peak {peak}</text>'
        ).format(
            y=HEIGHT - 2,
            w=WIDTH,
            a=first.strftime("%b %d"),
            b=last.strftime("%b %d"),
            peak=max(n for _, n in series),
        )
    )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
