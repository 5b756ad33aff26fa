from __future__ import annotations

import pytest


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"allow_private_destinations": True}
