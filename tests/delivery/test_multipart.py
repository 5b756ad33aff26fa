"""The multipart push body (seed 000), parsed back by a standard multipart parser."""

from __future__ import annotations

import dataclasses
import io
import json

import multipart

from fieldreport.delivery.bundle import FileData
from fieldreport.delivery.formats.multipart import multipart_form
from fieldreport.delivery.sample import sample_bundle


def parse(body: bytes, content_type: str) -> list[multipart.MultipartPart]:
    boundary = multipart.parse_options_header(content_type)[1]["boundary"]
    return list(multipart.MultipartParser(io.BytesIO(body), boundary))


def test_every_field_in_the_seed_order_with_its_headers() -> None:
    bundle = dataclasses.replace(
        sample_bundle("demo", "https://fr.example"),
        subject='Grüße "quoted" \r\n--not-a-boundary',
        notelist=["first", "zweite Notiz"],
        screenshot=FileData("shot.png", "image/png", b"\x89PNG\r\n--x\r\n\x00" * 500),
        backend_events=[{"message": "ünïcode"}],
    )

    form = multipart_form(bundle, "tok")
    parts = parse(form.data, form.content_type)

    assert form.content_type.startswith("multipart/form-data; boundary=")
    assert [p.name for p in parts] == [
        "token", "file", *bundle.fields(), "notelist[]", "notelist[]", "backendlog",
    ]  # fmt: skip
    by_name = {p.name: p for p in parts}
    assert by_name["token"].value == "tok"
    assert by_name["token"].headers["Content-Type"] == "text/plain; charset=utf-8"
    assert by_name["subject"].value == bundle.subject
    assert by_name["file"].filename == "shot.png"
    assert by_name["file"].content_type == "image/png"
    assert by_name["file"].raw == bundle.screenshot.data  # type: ignore[union-attr]
    assert [p.value for p in parts if p.name == "notelist[]"] == ["first", "zweite Notiz"]
    assert json.loads(by_name["backendlog"].raw) == [{"message": "ünïcode"}]
    assert by_name["backendlog"].filename == "backendlog.json"


def test_a_header_value_cannot_break_out_of_its_part() -> None:
    bundle = dataclasses.replace(
        sample_bundle("demo", "https://fr.example"),
        screenshot=FileData('a"b\r\nX-Evil: 1.png', "image/png\r\nX-Evil: 1", b"data"),
    )

    form = multipart_form(bundle, None)
    parts = parse(form.data, form.content_type)

    shot = next(p for p in parts if p.name == "file")
    assert "X-Evil" not in shot.headers
    assert "\r" not in shot.content_type and "\n" not in shot.content_type
    assert shot.raw == b"data"
    assert parts[0].value == ""  # no token: an empty field, as before
