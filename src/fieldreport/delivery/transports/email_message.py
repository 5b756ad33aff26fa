"""The report as an email: readable HTML (with a plain-text alternative), the screenshot
inline, the rendered PDF, the backend events and the report's attachments attached.

Everything that comes from the field is escaped (Jinja2 autoescape) and header values are
stripped of control characters, so a hostile subject can neither inject markup nor headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from jinja2 import Environment

from fieldreport.delivery.bundle import FileData, ReportBundle

SUBJECT_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")

_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

_HTML = _env.from_string(
    """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; \
color: #1f2328; margin: 0; padding: 16px;">
<h1 style="font-size: 20px; margin: 0 0 4px 0;">{{ b.subject or "(no subject)" }}</h1>
<p style="color: #59636e; margin: 0 0 16px 0;">Report #{{ b.ticketnr }} in {{ b.project }}, \
{{ b.created_at }}</p>
<table cellpadding="6" cellspacing="0" style="border-collapse: collapse; font-size: 14px;">
{% for label, value in rows %}
<tr><th align="left" valign="top" style="border-bottom: 1px solid #d1d9e0; \
white-space: nowrap;">{{ label }}</th>
<td style="border-bottom: 1px solid #d1d9e0; white-space: pre-wrap;">{{ value }}</td></tr>
{% endfor %}
</table>
{% if b.ticketurl %}
<p><a href="{{ b.ticketurl }}">Open the report in fieldreport</a></p>
{% endif %}
{% if b.notelist %}
<h2 style="font-size: 16px;">Notes</h2>
<ol>
{% for note in b.notelist %}
<li style="white-space: pre-wrap;">{{ note }}</li>
{% endfor %}
</ol>
{% endif %}
{% if screenshot_cid %}
<h2 style="font-size: 16px;">Screenshot</h2>
<p><img src="cid:{{ screenshot_cid }}" alt="Screenshot of report #{{ b.ticketnr }}" \
style="max-width: 100%; border: 1px solid #d1d9e0;"></p>
{% endif %}
{% if attached %}
<p style="color: #59636e;">Attached: {{ attached | join(", ") }}</p>
{% endif %}
</body></html>
"""
)

_TEXT = Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True).from_string(  # noqa: S701 (plain text)
    """{{ b.subject or "(no subject)" }}
Report #{{ b.ticketnr }} in {{ b.project }}, {{ b.created_at }}

{% for label, value in rows %}
{{ label }}: {{ value | replace("\n", "\n    ") }}
{% endfor %}
{% if b.ticketurl %}

Open the report: {{ b.ticketurl }}
{% endif %}
{% if b.notelist %}

Notes:
{% for note in b.notelist %}
{{ loop.index }}. {{ note | replace("\n", "\n   ") }}
{% endfor %}
{% endif %}
{% if attached %}

Attached: {{ attached | join(", ") }}
{% endif %}
"""
)


def header_text(value: str, limit: int = SUBJECT_MAX) -> str:
    """A single-line header value: control characters (CR, LF, …) become spaces."""
    cleaned = _CONTROL.sub(" ", value).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def safe_filename(name: str, fallback: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_FILENAME.sub("_", base).strip(" .")
    return base[:100] or fallback


def email_subject(bundle: ReportBundle) -> str:
    return header_text(f"[{bundle.project} #{bundle.ticketnr}] {bundle.subject or '(no subject)'}")


def _rows(bundle: ReportBundle) -> list[tuple[str, str]]:
    rows = [
        ("Report ID", bundle.reportid),
        ("Sender email", bundle.senderemail),
        ("Comment", bundle.sendercomment),
        ("Browser", bundle.browser),
        ("IP address", bundle.ipaddress),
        ("Referer", bundle.referer),
        ("Additional info", bundle.additionalinfo),
        ("Recording", bundle.recording or ""),
    ]
    if bundle.backend_events:
        rows.append(("Backend events", f"{len(bundle.backend_events)} (backend-events.json)"))
    return [(label, value) for label, value in rows if value]


def _looks_like_address(value: str) -> bool:
    return bool(re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", value))


def _split(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.partition("/")
    subtype = subtype.split(";", 1)[0].strip()
    if not maintype or not subtype:
        return "application", "octet-stream"
    return maintype.strip().lower(), subtype.lower()


def build_message(
    bundle: ReportBundle,
    *,
    sender: str,
    recipients: Sequence[str],
    token: str | None,
) -> EmailMessage:
    """The complete message (mixed > related/alternative > text, html + image; attachments)."""
    domain = sender.rpartition("@")[2] or "fieldreport.invalid"
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = email_subject(bundle)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(usegmt=True)
    # Stable across redeliveries, so mail systems and people can de-duplicate.
    msg["Message-ID"] = f"<fieldreport.{_MSGID_UNSAFE.sub('_', bundle.reportid)[:100]}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Fieldreport-Report-Id"] = header_text(bundle.reportid, 100)
    msg["X-Fieldreport-Ticket"] = str(bundle.ticketnr)
    if token:
        msg["X-Fieldreport-Token"] = header_text(token, 1000)
    if _looks_like_address(bundle.senderemail):
        msg["Reply-To"] = bundle.senderemail

    attached: list[str] = []
    if bundle.pdf:
        attached.append(f"report-{bundle.ticketnr}.pdf")
    if bundle.backend_events:
        attached.append("backend-events.json")
    extra_names = [
        safe_filename(f.filename, f"attachment-{i}") for i, f in enumerate(bundle.attachments, 1)
    ]
    attached.extend(extra_names)

    screenshot_cid = make_msgid("screenshot", domain=domain) if bundle.screenshot else None
    context = {
        "b": bundle,
        "rows": _rows(bundle),
        "title": email_subject(bundle),
        "screenshot_cid": screenshot_cid[1:-1] if screenshot_cid else None,
        "attached": attached,
    }
    msg.set_content(_TEXT.render(context))
    msg.add_alternative(_HTML.render(context), subtype="html")
    if bundle.screenshot is not None and screenshot_cid is not None:
        html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
        maintype, subtype = _split(bundle.screenshot.content_type)
        html_part.add_related(
            bundle.screenshot.data,
            maintype=maintype,
            subtype=subtype,
            cid=screenshot_cid,
            disposition="inline",
            filename=safe_filename(bundle.screenshot.filename, f"screenshot.{subtype}"),
        )
    if bundle.pdf:
        msg.add_attachment(bundle.pdf, maintype="application", subtype="pdf", filename=attached[0])
    if bundle.backend_events:
        events = json.dumps(bundle.backend_events, ensure_ascii=False, indent=2).encode()
        msg.add_attachment(
            events, maintype="application", subtype="json", filename="backend-events.json"
        )
    for name, file in zip(extra_names, bundle.attachments, strict=True):
        _attach(msg, file, name)
    return msg


def _attach(msg: EmailMessage, file: FileData, name: str) -> None:
    maintype, subtype = _split(file.content_type)
    msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=name)
