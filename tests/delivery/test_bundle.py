"""The bundle a delivery pushes: its files found in one pass, its time made text when read."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.loader import bundle_for, bundle_now
from fieldreport.state import AppState
from fieldreport.storage.reports import ATTACHMENT, SCREENSHOT, Report, ReportFields, StoredFile

CREATED = datetime(2026, 11, 23, 15, 4, 5, 6, tzinfo=UTC)


def _file(role: str, position: int, name: str) -> StoredFile:
    return StoredFile(role, position, name, "image/png", 1, "0" * 64, f"blob/{name}")


def _report(files: list[StoredFile]) -> Report:
    return Report(
        id="r1",
        project_id=1,
        project_name="acme",
        ticketnr=7,
        created_at=CREATED,
        fields=ReportFields(subject="s"),
        files=files,
    )


async def test_screenshot_and_attachments_whatever_their_order() -> None:
    files = [
        _file(ATTACHMENT, 0, "a.txt"),
        _file(SCREENSHOT, 0, "shot.png"),
        _file("other", 0, "ignored.bin"),
        _file(ATTACHMENT, 1, "b.txt"),
        _file(SCREENSHOT, 1, "second-shot.png"),  # only the first screenshot is pushed
        _file(ATTACHMENT, 2, ".."),  # nothing safe left: the fallback name
    ]
    blobs = {f.blob_key: f.filename.encode() for f in files}
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example"))
    bundle = await bundle_for(state, _report(files), blobs)
    assert bundle.screenshot is not None
    assert (bundle.screenshot.filename, bundle.screenshot.data) == ("shot.png", b"shot.png")
    assert [(a.filename, a.data) for a in bundle.attachments] == [
        ("a.txt", b"a.txt"),
        ("b.txt", b"b.txt"),
        ("attachment-3", b".."),
    ]
    assert bundle.ticketurl == "https://fr.example/reports/r1"


async def test_no_screenshot() -> None:
    files = [_file(ATTACHMENT, 0, "a.txt")]
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example"))
    bundle = await bundle_for(state, _report(files), {"blob/a.txt": b"x"})
    assert bundle.screenshot is None
    assert [a.filename for a in bundle.attachments] == ["a.txt"]


async def test_created_at_is_made_text_when_first_read() -> None:
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example"))
    bundle = await bundle_for(state, _report([]), {})
    assert bundle.__dict__["_created_at"] is CREATED  # not formatted while unread
    assert bundle.created_at == CREATED.isoformat() == "2026-11-23T15:04:05.000006+00:00"
    assert bundle.__dict__["_created_at"] == CREATED.isoformat()  # formatted once, kept


def test_created_at_given_as_text_stays_text() -> None:
    bundle = ReportBundle(
        reportid="r",
        ticketnr=1,
        ticketurl="u",
        project="p",
        created_at="2026-11-22T14:00:00Z",
        subject="",
        browser="",
        ipaddress="",
        referer="",
        senderemail="",
        sendercomment="",
        additionalinfo="",
        notelist=[],
        recording=None,
        screenshot=None,
    )
    assert bundle.created_at == "2026-11-22T14:00:00Z"
    bundle.created_at = CREATED
    assert bundle.created_at == CREATED.isoformat()


class _Blobs:
    """A blob store that serves ``data`` and counts what it was asked for."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = data
        self.asked: list[str] = []

    async def get_bytes(self, key: str) -> bytes:
        self.asked.append(key)
        return self.data[key]


async def test_bundle_now_is_bundle_for_when_every_pushed_file_was_read_ahead() -> None:
    files = [
        _file(ATTACHMENT, 0, "a.txt"),
        _file(SCREENSHOT, 0, "shot.png"),
        _file("other", 0, "ignored.bin"),  # not pushed: need not be read ahead
        _file(SCREENSHOT, 1, "second-shot.png"),  # nor this one
    ]
    ahead = {"blob/a.txt": b"a", "blob/shot.png": b"png"}
    blobs = _Blobs({})
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example", blobs=blobs))
    now = bundle_now(state, _report(files), ahead)
    assert now is not None and now == await bundle_for(state, _report(files), ahead)
    assert blobs.asked == []
    # A pushed file not read ahead, or none read ahead: bundle_for reads it.
    assert bundle_now(state, _report(files), {"blob/a.txt": b"a"}) is None
    assert bundle_now(state, _report(files), {}) is None
    assert bundle_now(state, _report(files), None) is None
    blobs.data["blob/shot.png"] = b"png"
    assert await bundle_for(state, _report(files), {"blob/a.txt": b"a"}) == now
    assert blobs.asked == ["blob/shot.png"]


async def test_bundle_now_leaves_a_recording_to_bundle_for() -> None:
    report = _report([_file(SCREENSHOT, 0, "shot.png")])
    report.fields.recording = "rec-1"  # its backend events are read from the database
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example"))
    assert bundle_now(state, report, {"blob/shot.png": b"png"}) is None


def test_every_field_of_the_report_lands_in_its_own_field_of_the_bundle() -> None:
    """The bundle is built positionally (cheaper per delivery): each report field, given a
    value of its own, must come out under its own name, not its neighbour's."""
    fields = ReportFields(
        subject="the subject",
        sendercomment="the comment",
        senderemail="jane@example.com",
        additionalinfo='{"viewport": "1x1"}',
        browser="the browser",
        ipaddress="192.0.2.7",
        referer="https://shop.example/checkout",
        recording=None,
        notelist=["first note", "second note"],
    )
    report = Report("r9", 3, "acme", 41, CREATED, fields, [_file(SCREENSHOT, 0, "shot.png"),
                    _file(ATTACHMENT, 0, "log.txt")])  # fmt: skip
    state = cast(AppState, SimpleNamespace(public_url="https://fr.example"))
    ahead = {"blob/shot.png": b"png", "blob/log.txt": b"log"}
    for public_url in (None, "https://given.example"):
        bundle = bundle_now(state, report, ahead, public_url)
        assert bundle is not None
        assert (bundle.reportid, bundle.ticketnr, bundle.project) == ("r9", 41, "acme")
        assert bundle.ticketurl == f"{public_url or 'https://fr.example'}/reports/r9"
        assert (bundle.subject, bundle.sendercomment, bundle.senderemail) == (
            "the subject", "the comment", "jane@example.com")  # fmt: skip
        assert bundle.additionalinfo == '{"viewport": "1x1"}'
        assert (bundle.browser, bundle.ipaddress, bundle.referer) == (
            "the browser", "192.0.2.7", "https://shop.example/checkout")  # fmt: skip
        assert bundle.notelist == ["first note", "second note"]
        assert bundle.notelist is not fields.notelist  # a copy: the bundle may be changed
        assert bundle.recording is None and bundle.pdf is None and bundle.backend_events == []
        assert bundle.screenshot is not None and bundle.screenshot.data == b"png"
        assert [a.data for a in bundle.attachments] == [b"log"]
        assert bundle.created_at == "2026-11-23T15:04:05.000006+00:00"
