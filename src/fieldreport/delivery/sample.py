"""A sample report for ``fieldreport destination test``: realistic, clearly labelled."""

from __future__ import annotations

import io
import uuid

from PIL import Image, ImageDraw

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.storage.schema.base import utcnow


def sample_png() -> bytes:
    img = Image.new("RGB", (640, 400), (245, 247, 250))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 640, 48), fill=(40, 70, 140))
    draw.text((16, 16), "fieldreport test report", fill=(255, 255, 255))
    draw.rectangle((200, 160, 440, 220), outline=(220, 40, 40), width=4)
    draw.text((220, 182), "This button does nothing", fill=(20, 20, 20))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def sample_bundle(project: str, public_url: str) -> ReportBundle:
    report_id = str(uuid.uuid4())
    return ReportBundle(
        reportid=report_id,
        ticketnr=1,
        ticketurl=f"{public_url}/reports/{report_id}",
        project=project,
        created_at=utcnow().isoformat(),
        subject="fieldreport test report",
        browser="Mozilla/5.0 (fieldreport destination test)",
        ipaddress="203.0.113.7",
        referer="https://app.example.com/checkout",
        senderemail="tester@example.com",
        sendercomment="This is a test push from `fieldreport destination test`. Ignore it.",
        additionalinfo='{"test": true}',
        notelist=["First note: the button does not react", "Second note: <b>escaped</b> & fine"],
        recording=None,
        screenshot=FileData("screenshot.png", "image/png", sample_png()),
    )
