"""Starting a recording in tests: a bare ``sessions`` row, as the session ingest writes it."""

from __future__ import annotations

import uuid

from fieldreport.state import AppState
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.schema.sessions import sessions


async def start_session(state: AppState, project_id: int, recording: str | None = None) -> str:
    recording = recording or str(uuid.uuid4())
    async with state.db.write() as conn:
        await conn.execute(
            sessions.insert().values(
                id=recording,
                project_id=project_id,
                platform="web",
                user_uuid=str(uuid.uuid4()),
                started_at=utcnow(),
            )
        )
    return recording
