"""The process-wide services an app or CLI command works with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fieldreport.settings import Settings
from fieldreport.storage.blobs import BlobStore, open_blob_store
from fieldreport.storage.db import Database
from fieldreport.storage.dbwait import wait_for_database
from fieldreport.storage.migrate import upgrade
from fieldreport.storage.schema.base import utcnow
from fieldreport.storage.writer import BatchWriter


@dataclass
class AppState:
    settings: Settings
    db: Database
    blobs: BlobStore
    # Set when a report with deliveries commits, so an in-process delivery worker starts at once.
    delivery_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # The current time; tests replace it to move time without sleeping.
    clock: Callable[[], datetime] = field(default=utcnow)
    # The ingest paths' rows (reports, session batches, backend events): concurrent requests
    # share transactions, each answered after its commit.
    writer: BatchWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = BatchWriter(self.db)

    @property
    def public_url(self) -> str:
        return self.settings.effective_public_url

    async def close(self) -> None:
        await self.writer.close()
        await self.blobs.close()
        await self.db.dispose()


async def open_state(settings: Settings, *, migrate: bool = True, wait: float = 0.0) -> AppState:
    """Open the database (creating and migrating it if needed) and the blob store.
    ``wait``: seconds to keep retrying a database that is not reachable yet; then (or at
    once) :class:`~fieldreport.storage.dbwait.DatabaseUnreachable`. With neither ``migrate``
    nor ``wait`` the database is not contacted here (it may be down: requests answer 503)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if migrate or wait:
        try:
            await wait_for_database(db, wait)
        except BaseException:
            await db.dispose()
            raise
    if migrate:
        await upgrade(db)
    secret = settings.s3_secret_access_key
    blobs = open_blob_store(
        settings.effective_blob_url,
        s3_endpoint=settings.s3_endpoint,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=secret.get_secret_value() if secret else None,
    )
    return AppState(settings=settings, db=db, blobs=blobs)
