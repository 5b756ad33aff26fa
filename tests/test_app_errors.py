"""Database outages answer 503 with Retry-After, never a bare 500."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx

from fieldreport.app import create_app
from fieldreport.settings import Settings
from fieldreport.state import open_state


async def test_database_down_is_503_with_retry_after(tmp_path: Path) -> None:
    # A PostgreSQL URL where nothing listens: every query fails to connect.
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        public_url="http://x.test",
    )
    state = await open_state(settings, migrate=False)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, state=state))
        async with httpx.AsyncClient(transport=transport, base_url="http://x.test") as client:
            resp = await client.post("/api/v1/reports", data={"key": "frpub_x", "subject": "s"})
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "5"
            assert resp.json()["code"] == "unavailable"
            health = await client.get("/healthz")
            assert health.status_code == 503
    finally:
        await state.close()


async def test_serve_freezes_start_up_objects_out_of_the_collectors_sight(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="http://x.test")
    gc.unfreeze()
    try:
        for freeze, frozen in ((False, False), (True, True)):
            app = create_app(settings, freeze_gc=freeze)
            async with app.router.lifespan_context(app):
                assert (gc.get_freeze_count() > 0) is frozen
    finally:
        gc.unfreeze()
