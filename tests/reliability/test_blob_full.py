"""The blob directory runs full: a clear 507 with Retry-After, no partial report, and
intake resumes by itself once there is space again.

The full disk is real where we may mount: a 512 KiB tmpfs as the blob directory, grown
afterwards with ``mount -o remount``. Without mount rights (not root), the fault is
injected at the operating-system boundary instead: a local blob store whose writes fail
with ``ENOSPC`` past a quota, so the same error path runs.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fieldreport.state import AppState
from fieldreport.storage.blobs.base import (
    BlobCheck,
    BlobSource,
    WrittenBlob,
    checked_bytes,
    source_chunks,
)
from fieldreport.storage.blobs.local import LocalBlobStore
from fieldreport.storage.projects import NewProject
from fieldreport.storage.schema.core import report_files, reports
from tests.reliability.conftest import Record
from tests.support.images import png_bytes

URL = "/api/v1/reports"
ATTACHMENT = 100 * 1024


class _Tmpfs:
    def __init__(self, path: Path, mounted: bool) -> None:
        self.path = path
        self.mounted = mounted

    def grow(self) -> None:
        subprocess.run(["mount", "-o", "remount,size=8m", str(self.path)], check=True)


@pytest.fixture
def blob_dir(tmp_path: Path) -> Iterator[_Tmpfs]:
    path = tmp_path / "blobs"
    path.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    yield _Tmpfs(path, mounted)
    if mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def backend() -> str:
    return "sqlite+local"


@pytest.fixture
def settings_overrides(blob_dir: _Tmpfs) -> dict[str, object]:
    return {"blob_url": blob_dir.path.as_uri()}


class _QuotaBlobs(LocalBlobStore):
    """Only without mount rights: a local store that fails with ENOSPC past ``quota`` bytes."""

    def __init__(self, root: Path, quota: int) -> None:
        super().__init__(root)
        self.quota = quota

    def _used(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    async def _limited(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        used = self._used()
        async for chunk in chunks:
            used += len(chunk)
            if used > self.quota:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            yield chunk

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await super().put_stream(key, self._limited(chunks))

    async def write(self, key: str, source: BlobSource, *, sha256: bool = False) -> WrittenBlob:
        return await super().write(key, self._limited(source_chunks(source, None)), sha256=sha256)

    async def create(
        self,
        key: str,
        source: BlobSource,
        *,
        sha256: bool = False,
        check: BlobCheck | None = None,
    ) -> WrittenBlob:
        if check is not None:
            check(checked_bytes(source))
        return await super().create(key, self._limited(source_chunks(source, None)), sha256=sha256)


async def _counts(state: AppState, root: Path) -> tuple[int, int, int, int]:
    async with state.db.read() as conn:
        n_reports = (await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar()
        n_files = (
            await conn.execute(sa.select(sa.func.count()).select_from(report_files))
        ).scalar()
    blobs = [p for p in (root / "reports").rglob("*") if p.is_file()]
    temps = list((root / ".tmp").iterdir())
    return int(n_reports or 0), int(n_files or 0), len(blobs), len(temps)


async def test_blob_directory_full(
    client: httpx.AsyncClient,
    state: AppState,
    project: NewProject,
    blob_dir: _Tmpfs,
    record: Record,
) -> None:
    if not blob_dir.mounted:
        state.blobs = _QuotaBlobs(blob_dir.path, 512 * 1024)

    async def post(n: int) -> httpx.Response:
        return await client.post(
            URL,
            headers={"X-Fieldreport-Key": project.public_key},
            data={"subject": f"fill #{n}"},
            files=[
                ("file", ("s.png", png_bytes(), "image/png")),
                ("attachment", ("big.bin", os.urandom(ATTACHMENT), "application/octet-stream")),
            ],
        )

    accepted = 0
    refused: httpx.Response | None = None
    for n in range(20):  # 512 KiB holds at most 5 of these reports
        resp = await post(n)
        if resp.status_code != 201:
            refused = resp
            break
        accepted += 1
    assert refused is not None, "the blob directory never ran full"
    assert refused.status_code == 507, refused.text
    assert refused.json()["code"] == "storage_unavailable"
    assert "full" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) > 0
    # Again, while full: the screenshot fits, the attachment does not -> nothing is kept.
    again = await post(100)
    assert again.status_code == 507

    n_reports, n_files, n_blobs, n_temps = await _counts(state, blob_dir.path)
    assert n_reports == accepted
    assert n_files == n_blobs == 2 * accepted  # no half-stored report, no orphan blob
    assert n_temps == 0  # no partial file left behind (in place or temporary)

    if blob_dir.mounted:
        blob_dir.grow()
    else:
        state.blobs = LocalBlobStore(blob_dir.path)
    resumed = await post(200)
    assert resumed.status_code == 201, resumed.text  # no restart needed
    record(
        "fault",
        "blob directory full: reports with a 100 KiB attachment into a 512 KiB "
        + ("tmpfs (a real ENOSPC)" if blob_dir.mounted else "store with an ENOSPC quota"),
        "507 `storage_unavailable` with Retry-After; no report row, no orphan blob, no temp "
        "file for refused reports; intake resumed once the tmpfs grew",
        accepted_before_full=accepted,
    )


async def test_a_failed_flush_refuses_the_report_and_keeps_nothing(
    client: httpx.AsyncClient, state: AppState, project: NewProject, tmp_path: Path
) -> None:
    """The rows wait for the flush that makes the files durable (the flusher queues them);
    when that ``syncfs`` fails, they are never written and the files are removed again."""

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    root = tmp_path / "failing-blobs"
    state.blobs = LocalBlobStore(root, syncfs=failing)
    resp = await client.post(
        URL,
        headers={"X-Fieldreport-Key": project.public_key},
        data={"subject": "never durable"},
        files={"file": ("s.png", png_bytes(), "image/png")},
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "storage_unavailable"
    assert "cannot flush blobs to disk" in resp.json()["error"]
    assert int(resp.headers["retry-after"]) > 0
    assert await _counts(state, root) == (0, 0, 0, 0)
