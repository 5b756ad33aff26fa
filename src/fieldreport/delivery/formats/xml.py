"""The ``xml`` format (seed 003's report push): the report's fields and the rendered report
document (PDF), base64-encoded, in one XML document. Its schema is ``report-push.xsd``
next to this module (also in ``docs/report-push.xsd``). Every text is escaped by lxml;
characters XML 1.0 cannot carry at all (most control characters) become U+FFFD.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from lxml import etree

from fieldreport.delivery.bundle import FileData, ReportBundle

NAMESPACE = "urn:fieldreport:report-push:1"
XSD_PATH = Path(__file__).with_name("report-push.xsd")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NAMESPACE}}}{name}")
    if text is not None:
        child.text = xml_text(text)
    return child


def _file(parent: etree._Element, name: str, f: FileData) -> None:
    el = _el(parent, name, base64.b64encode(f.data).decode("ascii"))
    el.set("filename", xml_text(f.filename))
    el.set("contenttype", xml_text(f.content_type))
    el.set("size", str(len(f.data)))


def xml_document(bundle: ReportBundle, *, token: str | None) -> etree._Element:
    if bundle.pdf is None:
        raise ValueError("the xml format needs the rendered PDF (bundle.pdf)")
    root = etree.Element(f"{{{NAMESPACE}}}report", nsmap={None: NAMESPACE})  # type: ignore[dict-item]
    root.set("version", "1")
    if token:
        _el(root, "token", token)
    _el(root, "reportid", bundle.reportid)
    _el(root, "ticketnr", str(bundle.ticketnr))
    _el(root, "ticketurl", bundle.ticketurl)
    _el(root, "project", bundle.project)
    _el(root, "created", bundle.created_at)
    for name, value in bundle.fields().items():
        if name not in ("reportid", "ticketnr", "ticketurl"):
            _el(root, name, value)
    if bundle.recording:
        _el(root, "recording", bundle.recording)
    notes = _el(root, "notelist")
    for note in bundle.notelist:
        _el(notes, "note", note)
    if bundle.screenshot is not None:
        _file(root, "screenshot", bundle.screenshot)
    _file(
        root,
        "document",
        FileData(f"report-{bundle.ticketnr}.pdf", "application/pdf", bundle.pdf),
    )
    if bundle.backend_events:
        events = _el(root, "backendevents")
        for event in bundle.backend_events:
            _el(events, "event", json.dumps(event, ensure_ascii=False))
    return root


def xml_body(bundle: ReportBundle, *, token: str | None) -> bytes:
    doc = xml_document(bundle, token=token)
    return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))


def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))
