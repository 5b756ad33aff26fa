"""The rendered report: a PDF with the report's fields, notes and screenshot (fpdf2).

What a person would otherwise get by email; it travels inside the XML push, as the email's
attachment and in FTP/SFTP uploads. Text is set in DejaVu Sans when the system has it
(Debian: fonts-dejavu-core), so any language renders; otherwise in Helvetica with
characters outside Latin-1 replaced.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from fieldreport import __version__
from fieldreport.delivery.bundle import ReportBundle

log = logging.getLogger(__name__)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
MAX_TEXT = 20_000  # characters per field in the document (the full text is in the push itself)
MAX_EVENTS = 100
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            return regular, bold
    return None


class _Doc(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        fonts = _font_files()
        self.unicode = fonts is not None
        if fonts is not None:
            self.add_font("body", "", str(fonts[0]))
            self.add_font("body", "B", str(fonts[1]))
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)

    def text_for(self, value: str) -> str:
        value = _UNPRINTABLE.sub("\ufffd", value[:MAX_TEXT])
        if not self.unicode:
            value = value.encode("latin-1", "replace").decode("latin-1")
        return value

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(120)
        self.cell(0, 5, f"fieldreport {__version__} - page {self.page_no()}", align="C")


def _field(doc: _Doc, label: str, value: str) -> None:
    if not value:
        return
    doc.set_font(doc.family, "B", 10)
    doc.set_text_color(90)
    doc.cell(40, 6, doc.text_for(label), new_x=XPos.RIGHT, new_y=YPos.TOP)
    doc.set_font(doc.family, "", 10)
    doc.set_text_color(0)
    doc.multi_cell(0, 6, doc.text_for(value), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _screenshot(doc: _Doc, data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB") if img.mode not in ("RGB", "L") else img.copy()
    except Exception:
        log.warning("screenshot could not be decoded for the PDF", exc_info=True)
        return
    width = doc.epw
    height = width * rgb.height / max(rgb.width, 1)
    max_height = doc.eph - 20
    if height > max_height:
        width, height = width * max_height / height, max_height
    if doc.get_y() + height > doc.h - doc.b_margin:
        doc.add_page()
    doc.ln(2)
    doc.image(rgb, x=doc.l_margin, w=width, h=height)


def render_pdf(bundle: ReportBundle) -> bytes:
    doc = _Doc()
    doc.set_title(doc.text_for(f"Report #{bundle.ticketnr}: {bundle.subject}"))
    doc.set_creator(f"fieldreport {__version__}")
    doc.add_page()
    doc.set_font(doc.family, "B", 16)
    title = f"#{bundle.ticketnr}  {bundle.subject or '(no subject)'}"
    doc.multi_cell(0, 9, doc.text_for(title), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_font(doc.family, "", 9)
    doc.set_text_color(90)
    doc.cell(0, 6, doc.text_for(f"{bundle.project} - {bundle.created_at}"))
    doc.ln(9)
    _field(doc, "Comment", bundle.sendercomment)
    _field(doc, "Sender", bundle.senderemail)
    _field(doc, "Page", bundle.referer)
    _field(doc, "Browser", bundle.browser)
    _field(doc, "IP address", bundle.ipaddress)
    _field(doc, "Additional info", bundle.additionalinfo)
    _field(doc, "Recording", bundle.recording or "")
    _field(doc, "Report", bundle.ticketurl)
    _field(doc, "Report id", bundle.reportid)
    if bundle.notelist:
        doc.ln(3)
        doc.set_font(doc.family, "B", 12)
        doc.set_text_color(0)
        doc.cell(0, 7, "Notes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_font(doc.family, "", 10)
        for i, note in enumerate(bundle.notelist, 1):
            doc.multi_cell(0, 6, doc.text_for(f"{i}. {note}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if bundle.backend_events:
        doc.ln(3)
        doc.set_font(doc.family, "B", 12)
        doc.cell(0, 7, f"Backend events ({len(bundle.backend_events)})")
        doc.ln(7)
        doc.set_font(doc.family, "", 8)
        for event in bundle.backend_events[:MAX_EVENTS]:
            line = json.dumps(event, ensure_ascii=False)[:300]
            doc.multi_cell(0, 4, doc.text_for(line), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if len(bundle.backend_events) > MAX_EVENTS:
            doc.cell(0, 5, f"... and {len(bundle.backend_events) - MAX_EVENTS} more")
            doc.ln(5)
    if bundle.screenshot is not None:
        doc.ln(3)
        doc.set_font(doc.family, "B", 12)
        doc.set_text_color(0)
        doc.cell(0, 7, "Screenshot", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        _screenshot(doc, bundle.screenshot.data)
    return bytes(doc.output())
