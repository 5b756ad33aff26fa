"""JSON as a collapsible tree of ``<details>`` elements: readable without JavaScript."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

MAX_NODES = 5000  # beyond this, the rest is shown as raw JSON
OPEN_DEPTH = 2  # levels expanded by default
MAX_DEPTH = 40  # deeper levels are shown as raw JSON


def _scalar(value: Any) -> Markup:
    if value is None:
        return Markup('<span class="j-null">null</span>')
    if isinstance(value, bool):
        return Markup('<span class="j-bool">{}</span>').format("true" if value else "false")
    if isinstance(value, int | float):
        return Markup('<span class="j-num">{}</span>').format(json.dumps(value))
    return Markup('<span class="j-str">{}</span>').format(
        json.dumps(str(value), ensure_ascii=False)
    )


def _summary(value: list[Any] | dict[str, Any]) -> str:
    if isinstance(value, dict):
        return f"{{…}} {len(value)} key{'s' if len(value) != 1 else ''}"
    return f"[…] {len(value)} item{'s' if len(value) != 1 else ''}"


class _Builder:
    def __init__(self) -> None:
        self.nodes = 0
        self.parts: list[Markup] = []

    def node(self, key: Markup | None, value: Any, depth: int) -> None:
        self.nodes += 1
        label = Markup('<span class="j-key">{}</span>: ').format(key) if key is not None else ""
        if not isinstance(value, dict | list) or not value:
            shown = (
                _scalar(value)
                if not isinstance(value, dict | list)
                else escape("{}" if isinstance(value, dict) else "[]")
            )
            self.parts.append(Markup('<li class="j-leaf">{}{}</li>').format(label, shown))
            return
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raw = json.dumps(value, ensure_ascii=False)[:2000]
            self.parts.append(
                Markup('<li class="j-leaf">{}<code>{}</code></li>').format(label, raw)
            )
            return
        opened = Markup(" open") if depth < OPEN_DEPTH else Markup("")
        self.parts.append(
            Markup('<li><details{}><summary>{}<span class="j-sum">{}</span></summary><ul>').format(
                opened, label, _summary(value)
            )
        )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            key = escape(json.dumps(k, ensure_ascii=False)) if isinstance(k, str) else escape(k)
            self.node(key, v, depth + 1)
        self.parts.append(Markup("</ul></details></li>"))


def json_tree(value: Any) -> Markup:
    builder = _Builder()
    builder.node(None, value, 0)
    return Markup('<ul class="jsontree">') + Markup("").join(builder.parts) + Markup("</ul>")


def parse_json(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` is a JSON object or array, else (False, None)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return False, None
    try:
        return True, json.loads(stripped)
    except ValueError:
        return False, None
