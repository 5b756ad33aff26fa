"""The publish-by-rename procedure, including faults a real server rarely produces on cue."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.delivery.transports.report_folder import (
    folder_files,
    folder_name,
    publish,
    screenshot_name,
)
from tests.delivery.transports.conftest import REPORT_ID, make_bundle


class MemoryFolders:
    """An in-memory remote: paths map to bytes (files) or None (directories)."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes | None] = {}
        self.fail_rename_into: str | None = None

    async def make_dirs(self, path: str) -> None:
        parts = [part for part in path.strip("/").split("/") if part]
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/" + "/".join(parts[:i]), None)

    async def write(self, path: str, data: bytes) -> None:
        self.entries[path] = data

    async def rename(self, source: str, target: str) -> None:
        if target == self.fail_rename_into and ".partial-" in source:
            raise OSError("simulated: no space left while renaming")
        if target in self.entries:
            raise OSError("target exists")
        for path in [p for p in self.entries if p == source or p.startswith(source + "/")]:
            self.entries[target + path[len(source) :]] = self.entries.pop(path)

    async def exists(self, path: str) -> bool:
        return path in self.entries

    async def remove_tree(self, path: str) -> None:
        for p in [p for p in self.entries if p == path or p.startswith(path + "/")]:
            del self.entries[p]

    def names(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(
            p[len(prefix) :]
            for p in self.entries
            if p.startswith(prefix) and "/" not in p[len(prefix) :]
        )


async def test_failed_final_rename_keeps_the_previous_delivery(bundle: ReportBundle) -> None:
    fs = MemoryFolders()
    await publish(fs, "/out", bundle, "tok", [])
    final = f"/out/{folder_name(bundle)}"
    before = dict(fs.entries)

    fs.fail_rename_into = final
    progress: list[str] = []
    with pytest.raises(OSError, match="simulated"):
        await publish(fs, "/out", replace(bundle, notelist=["new"]), "tok", progress)

    # The previous delivery is back in place, untouched, and nothing temporary remains.
    assert fs.entries == before
    assert any("renaming" in step for step in progress)


async def test_publish_into_root_and_layout(bundle: ReportBundle) -> None:
    fs = MemoryFolders()
    with_attachment = replace(bundle, attachments=[FileData("../x/log.txt", "text/plain", b"x")])
    final = await publish(fs, "/", with_attachment, None, [])

    assert final == f"/{folder_name(bundle)}"
    assert fs.names(final) == [
        "attachment-1-log.txt",
        "report.json",
        "report.pdf",
        "screenshot.png",
    ]
    assert fs.names("/") == [folder_name(bundle)]


def test_report_json_follows_seed_order_and_includes_token(bundle: ReportBundle) -> None:
    document = json.loads(folder_files(bundle, "tok")[-1].data)
    assert list(document)[:4] == ["token", "reportid", "ticketurl", "ticketnr"]
    assert document["ticketnr"] == 42
    assert document["files"]["pdf"] == "report.pdf"
    assert "token" not in json.loads(folder_files(bundle, None)[-1].data)


@pytest.mark.parametrize(
    ("content_type", "filename", "expected"),
    [
        ("image/png", "x.jpg", "screenshot.png"),
        ("image/jpeg", "x", "screenshot.jpg"),
        ("application/octet-stream", "shot.heic", "screenshot.heic"),
        ("application/octet-stream", "../../evil.sh;rm", "screenshot.bin"),
    ],
)
def test_screenshot_names(content_type: str, filename: str, expected: str) -> None:
    assert screenshot_name(content_type, filename) == expected


def test_folder_name_is_safe() -> None:
    assert folder_name(replace_id("../../etc")) == "42-_etc"
    assert folder_name(replace_id(REPORT_ID)) == f"42-{REPORT_ID}"


def replace_id(reportid: str) -> ReportBundle:
    return make_bundle(reportid=reportid)
