"""The report as a folder (FTP and SFTP): layout and the publish-by-rename procedure.

A report becomes ``<base>/<ticketnr>-<reportid>/`` holding ``report.json``, ``report.pdf``
(when rendered), the screenshot (``screenshot.png``, ``.jpg``, …) and the report's other
files (``attachment-1-<name>``, …). It is written under a hidden temporary name
(``.<folder>.partial-<random>``) and renamed when every file is complete, so a reader never
sees half a report. A redelivery of the same report moves the old folder aside
(``.<folder>.old-<random>``), renames the new one into place and deletes the old one, so the
folder is replaced as a whole and never mixes two deliveries.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.transports.email_message import safe_filename

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
_NAME_RE = re.compile(r"[^A-Za-z0-9_-]+")
SWAP_ATTEMPTS = 3


@dataclass(frozen=True)
class FolderFile:
    name: str
    data: bytes


class RemoteFolders(Protocol):
    """The few file operations the publish procedure needs, on absolute POSIX paths."""

    async def make_dirs(self, path: str) -> None: ...
    async def write(self, path: str, data: bytes) -> None: ...
    async def rename(self, source: str, target: str) -> None: ...
    async def exists(self, path: str) -> bool: ...
    async def remove_tree(self, path: str) -> None: ...


def folder_name(bundle: ReportBundle) -> str:
    return f"{bundle.ticketnr}-{_NAME_RE.sub('_', bundle.reportid)[:80]}"


def screenshot_name(content_type: str, filename: str) -> str:
    ext = _EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower())
    if ext is None:
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        ext = suffix if suffix.isalnum() and len(suffix) <= 5 else "bin"
    return f"screenshot.{ext}"


def report_document(bundle: ReportBundle, token: str | None, files: dict[str, Any]) -> bytes:
    """``report.json``: the report's fields, notes, files, backend events (and token)."""
    document: dict[str, Any] = {"token": token} if token else {}
    document.update(bundle.fields())  # seed 000's fields, in its order
    document["ticketnr"] = bundle.ticketnr
    document.update(
        {
            "notelist": list(bundle.notelist),
            "project": bundle.project,
            "created_at": bundle.created_at,
            "recording": bundle.recording,
            "files": files,
            "backend_events": bundle.backend_events,
        }
    )
    return json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"


def folder_files(bundle: ReportBundle, token: str | None) -> list[FolderFile]:
    """Every file of the report folder; ``report.json`` comes last."""
    out: list[FolderFile] = []
    files: dict[str, Any] = {"screenshot": None, "pdf": None, "attachments": []}
    if bundle.screenshot is not None:
        name = screenshot_name(bundle.screenshot.content_type, bundle.screenshot.filename)
        out.append(FolderFile(name, bundle.screenshot.data))
        files["screenshot"] = {
            "name": name,
            "filename": bundle.screenshot.filename,
            "content_type": bundle.screenshot.content_type,
        }
    if bundle.pdf:
        out.append(FolderFile("report.pdf", bundle.pdf))
        files["pdf"] = "report.pdf"
    for i, attachment in enumerate(bundle.attachments, 1):
        name = f"attachment-{i}-{safe_filename(attachment.filename, 'file')}"
        out.append(FolderFile(name, attachment.data))
        files["attachments"].append(
            {
                "name": name,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
            }
        )
    out.append(FolderFile("report.json", report_document(bundle, token, files)))
    return out


def join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if base.rstrip("/") else f"/{name}"


async def publish(
    fs: RemoteFolders, base: str, bundle: ReportBundle, token: str | None, progress: list[str]
) -> str:
    """Upload the report folder under ``base`` atomically; returns its final path.

    ``progress`` gets the current step appended (for error messages).
    """
    final_name = folder_name(bundle)
    final = join(base, final_name)
    temp = join(base, f".{final_name}.partial-{secrets.token_hex(6)}")
    progress.append(f"creating {base}")
    await fs.make_dirs(base)
    progress.append(f"creating {temp}")
    await fs.make_dirs(temp)
    try:
        for file in folder_files(bundle, token):
            progress.append(f"uploading {join(temp, file.name)}")
            await fs.write(join(temp, file.name), file.data)
        await _swap_into_place(fs, base, final_name, temp, progress)
    except BaseException:
        await _remove_quietly(fs, temp)
        raise
    return final


async def _swap_into_place(
    fs: RemoteFolders, base: str, final_name: str, temp: str, progress: list[str]
) -> None:
    final = join(base, final_name)
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        last = attempt == SWAP_ATTEMPTS
        old: str | None = None
        if await fs.exists(final):
            old = join(base, f".{final_name}.old-{secrets.token_hex(6)}")
            progress.append(f"moving the previous delivery {final} aside")
            try:
                await fs.rename(final, old)
            except Exception:
                if last or await fs.exists(final):
                    raise
                continue  # another delivery of this report moved it meanwhile: look again
        progress.append(f"renaming {temp} to {final}")
        try:
            await fs.rename(temp, final)
        except Exception:
            if old is not None:
                try:  # put the previous delivery back rather than leave nothing
                    await fs.rename(old, final)
                except Exception:
                    await _remove_quietly(fs, old)
            if last or not await fs.exists(final):
                raise
            continue  # another delivery of this report won the race: replace it in turn
        if old is not None:
            await _remove_quietly(fs, old)
        return


async def _remove_quietly(fs: RemoteFolders, path: str) -> None:
    try:
        if await fs.exists(path):
            await fs.remove_tree(path)
    except Exception:  # noqa: S110 (best-effort cleanup of a hidden temporary folder)
        pass
