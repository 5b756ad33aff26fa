"""app.state: values are plain attributes, and every way of writing them is seen by reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldreport.app import create_app
from fieldreport.settings import Settings


def test_reads_see_attribute_and_item_writes_and_deletes(tmp_path: Path) -> None:
    state = create_app(Settings(data_dir=tmp_path)).state
    state.writer = "a"
    assert state.writer == "a" and state["writer"] == "a"
    state["writer"] = "b"  # Starlette's State also takes items
    assert state.writer == "b"
    assert vars(state)["writer"] == "b"  # found by the normal lookup, not __getattr__
    del state.writer
    assert getattr(state, "writer", None) is None
    state["cache"] = 1
    del state["cache"]
    with pytest.raises(AttributeError):
        _ = state.cache
    assert state.metrics is not None  # set by create_app
