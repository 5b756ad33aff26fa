"""Group commit: many requests' small writes in one transaction, each answered after it commits.

With SQLite's single writer and ``synchronous=FULL`` every transaction costs a device flush,
so one transaction per session batch caps ingest at a few hundred batches a second. Here
callers queue their item and wait; while one transaction is being committed the next callers
queue up, and the next transaction takes all of them (up to ``max_items``), written by one
call of ``write`` (which can use multi-row statements). There is no timer:
a lone request is committed at once, a crowd shares commits. A caller's result (or the
transaction's error) is delivered only after the commit, so durability per request holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage.db import Database

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        db: Database,
        write: Callable[[AsyncConnection, list[T]], Awaitable[list[R]]],
        *,
        max_items: int = 256,
    ) -> None:
        self._db = db
        self._write = write
        self._max = max_items
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # A caller that went away (client disconnect) must not leave an unread error behind.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                async with self._db.write() as conn:
                    results = await self._write(conn, [item for item, _ in group])
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
