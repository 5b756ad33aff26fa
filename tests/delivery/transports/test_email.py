"""Email transport against a real aiosmtpd server on loopback (STARTTLS, implicit TLS, AUTH)."""

from __future__ import annotations

import asyncio
import email
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from fieldreport.delivery.bundle import FileData, ReportBundle
from fieldreport.delivery.transports import email as email_transport
from tests.conftest import free_port
from tests.delivery.transports.conftest import Certificate, make_bundle

USER, PASSWORD = "bot@example.com", "s3cr#t:p@ss"
QUOTED_PASSWORD = "s3cr%23t%3Ap%40ss"


@dataclass
class Received:
    message: EmailMessage
    envelope: Envelope
    authenticated: bool
    encrypted: bool


@dataclass
class Mailbox:
    handler: Any
    port: int
    received: list[Received] = field(default_factory=list)


class Handler:
    def __init__(self, box: list[Received]) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.endswith("@nobody.example"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.box.append(
            Received(
                message,
                envelope,
                bool(session.authenticated),
                server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 2.0.0 queued as 1234"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def server_context(certificate: Certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    return context


@pytest.fixture
def mailbox(certificate: Certificate) -> Iterator[Mailbox]:
    """STARTTLS required, AUTH required (over TLS only), like a submission server on 587."""
    box: list[Received] = []
    port = free_port()
    controller = Controller(
        Handler(box),
        hostname="127.0.0.1",
        port=port,
        server_hostname="mail.localhost",
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield Mailbox(controller, port, box)
    controller.stop()


@pytest.fixture
def plain_mailbox() -> Iterator[Mailbox]:
    """No TLS at all, no AUTH (a local relay)."""
    box: list[Received] = []
    port = free_port()
    controller = Controller(Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    yield Mailbox(controller, port, box)
    controller.stop()


@pytest.fixture
def tls_mailbox(certificate: Certificate) -> Iterator[Mailbox]:
    """Implicit TLS (smtps, port 465 style) with AUTH."""
    box: list[Received] = []
    port = free_port()
    controller = Controller(
        Handler(box),
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(certificate),
        authenticator=authenticator,
        auth_required=True,
        # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS.
        auth_require_tls=False,
    )
    controller.start()
    yield Mailbox(controller, port, box)
    controller.stop()


def url(
    port: int, certificate: Certificate, *, password: str = QUOTED_PASSWORD, **extra: str
) -> str:
    query = "&".join(
        [
            "to=ops@example.com",
            "to=dev@example.com",
            "from=bugs@example.com",
            f"ca_file={certificate.cert_file}",
            *(f"{k}={v}" for k, v in extra.items()),
        ]
    )
    return f"smtp://bot%40example.com:{password}@localhost:{port}?{query}"


async def send(target: str, bundle: ReportBundle, token: str | None = "T0K3N", timeout: float = 10):
    return await email_transport.send(
        target, bundle, token=token, timeout=timeout, allow_private=True
    )


def parts(message: EmailMessage) -> dict[str, list[EmailMessage]]:
    found: dict[str, list[EmailMessage]] = {}
    for part in message.walk():
        assert isinstance(part, EmailMessage)
        found.setdefault(part.get_content_type(), []).append(part)
    return found


async def test_starttls_auth_and_message_structure(
    mailbox: Mailbox, certificate: Certificate, bundle: ReportBundle
) -> None:
    result = await send(url(mailbox.port, certificate), bundle)

    assert result.ok, result.error
    assert result.status_code == 250
    assert "queued as 1234" in result.response_excerpt
    [got] = mailbox.received
    assert got.authenticated and got.encrypted
    assert got.envelope.mail_from == "bugs@example.com"
    assert got.envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    message = got.message
    assert message["Subject"] == "[shop #42] Checkout button does nothing"
    assert message["X-Fieldreport-Token"] == "T0K3N"
    assert message["X-Fieldreport-Report-Id"] == bundle.reportid
    assert message["Reply-To"] == "anna@example.com"
    assert message["Message-ID"] == f"<fieldreport.{bundle.reportid}@example.com>"
    assert message.get_content_type() == "multipart/mixed"

    found = parts(message)
    [html_part] = found["text/html"]
    [text_part] = found["text/plain"]
    html = html_part.get_content()
    assert "Checkout button does nothing" in html and "no spinner" in html
    assert "I clicked twice." in text_part.get_content()
    # The screenshot is inline, referenced from the HTML by its Content-ID.
    [image] = found["image/png"]
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == bundle.screenshot.data  # type: ignore[union-attr]
    # related wraps the html and the image; alternative holds text and html.
    assert "multipart/related" in found and "multipart/alternative" in found
    [pdf] = found["application/pdf"]
    assert pdf.get_filename() == "report-42.pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    [events] = found["application/json"]
    assert events.get_filename() == "backend-events.json"
    assert json.loads(events.get_content()) == bundle.backend_events


async def test_hostile_fields_are_escaped_and_cannot_inject_headers(
    mailbox: Mailbox, certificate: Certificate
) -> None:
    hostile = make_bundle(
        subject='<script>alert("x")</script>\r\nBcc: victim@example.com',
        sendercomment="<img src=x onerror=alert(1)> & more",
        notelist=["</li><b>bold</b>"],
        senderemail="x@example.com>\r\nBcc: victim@example.com",
        backend_events=[],
        pdf=None,
    )
    result = await send(url(mailbox.port, certificate), hostile, token="tok\r\nX-Evil: 1")

    assert result.ok, result.error
    [got] = mailbox.received
    message = got.message
    assert got.envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Reply-To"] is None  # not a plausible address
    assert "\n" not in message["Subject"] and "<script>" in message["Subject"]
    assert message["X-Fieldreport-Token"] == "tok X-Evil: 1"
    found = parts(message)
    html = found["text/html"][0].get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt; &amp; more" in html
    assert "<b>bold</b>" not in html
    assert "application/pdf" not in found and "application/json" not in found


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls(tls_mailbox: Mailbox, certificate: Certificate, bundle: ReportBundle):
    target = url(tls_mailbox.port, certificate).replace("smtp://", "smtps://")
    result = await send(target, bundle, token=None)

    assert result.ok, result.error
    [got] = tls_mailbox.received
    assert got.encrypted and got.authenticated
    assert got.message["X-Fieldreport-Token"] is None


async def test_wrong_password_is_permanent_and_never_shown(
    mailbox: Mailbox, certificate: Certificate, bundle: ReportBundle
) -> None:
    result = await send(url(mailbox.port, certificate, password="wr0ng-pa55word"), bundle)

    assert not result.ok and result.permanent
    assert result.status_code == 535
    assert "authentication refused" in (result.error or "")
    assert "wr0ng-pa55word" not in repr(result)
    assert mailbox.received == []


async def test_rejected_recipient_is_permanent(
    plain_mailbox: Mailbox, certificate: Certificate, bundle: ReportBundle
) -> None:
    target = f"smtp://localhost:{plain_mailbox.port}?to=ghost@nobody.example&from=bugs@example.com"
    result = await send(target, bundle)

    assert not result.ok and result.permanent
    assert result.status_code == 550
    assert "ghost@nobody.example" in (result.error or "")


async def test_some_recipients_refused_still_delivers_to_the_others(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    target = (
        f"smtp://localhost:{plain_mailbox.port}"
        "?to=ops@example.com,ghost@nobody.example&from=bugs@example.com"
    )
    result = await send(target, bundle)

    assert result.ok, result.error
    assert "ghost@nobody.example: 550" in result.response_excerpt
    assert plain_mailbox.received[0].envelope.rcpt_tos == ["ops@example.com"]


async def test_plain_relay_without_tls(plain_mailbox: Mailbox, bundle: ReportBundle) -> None:
    target = f"smtp://localhost:{plain_mailbox.port}?to=ops@example.com&from=bugs@example.com"
    result = await send(target, bundle)

    assert result.ok, result.error
    assert not plain_mailbox.received[0].encrypted


async def test_starttls_required_but_not_offered(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    target = (
        f"smtp://localhost:{plain_mailbox.port}"
        "?to=ops@example.com&from=bugs@example.com&starttls=require"
    )
    result = await send(target, bundle)

    assert not result.ok and result.permanent
    assert "STARTTLS" in (result.error or "")
    assert plain_mailbox.received == []


async def test_password_never_sent_unencrypted(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    target = (
        f"smtp://bot:hunter2@localhost:{plain_mailbox.port}?to=ops@example.com&from=b@example.com"
    )
    result = await send(target, bundle)

    assert not result.ok and result.permanent
    assert "unencrypted" in (result.error or "")
    assert "hunter2" not in repr(result)


async def test_untrusted_certificate_is_permanent(
    mailbox: Mailbox, certificate: Certificate, bundle: ReportBundle
) -> None:
    target = url(mailbox.port, certificate).replace(f"&ca_file={certificate.cert_file}", "")
    result = await send(target, bundle)

    assert not result.ok and result.permanent
    assert "not trusted" in (result.error or "")
    assert mailbox.received == []


async def test_certificate_must_match_the_host_name(
    certificate: Certificate, bundle: ReportBundle
) -> None:
    # 127.0.0.2 is loopback too, but the certificate names localhost and 127.0.0.1 only.
    received: list[Received] = []
    port = free_port()
    controller = Controller(
        Handler(received),
        hostname="127.0.0.2",
        port=port,
        tls_context=server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    try:
        target = url(port, certificate).replace("@localhost:", "@127.0.0.2:")
        result = await send(target, bundle)
    finally:
        controller.stop()

    assert not result.ok and result.permanent
    assert "not trusted" in (result.error or "")
    assert "127.0.0.2" in (result.error or "")
    assert received == []


async def test_connection_refused_is_transient(dead_port: int, bundle: ReportBundle) -> None:
    target = f"smtp://u:p4ss@localhost:{dead_port}?to=ops@example.com&from=b@example.com"
    result = await send(target, bundle)

    assert not result.ok and not result.permanent
    assert "cannot reach" in (result.error or "")
    assert "p4ss" not in repr(result)


async def test_hung_server_times_out(silent_port: int, bundle: ReportBundle) -> None:
    target = f"smtp://localhost:{silent_port}?to=ops@example.com&from=b@example.com"
    result = await send(target, bundle, timeout=0.3)

    assert not result.ok and not result.permanent
    assert "timed out after 0.3s" in (result.error or "")
    assert result.duration_ms < 5000


async def test_private_destination_refused_unless_allowed(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    target = f"smtp://localhost:{plain_mailbox.port}?to=ops@example.com&from=b@example.com"
    result = await email_transport.send(target, bundle, token=None, timeout=5, allow_private=False)

    assert not result.ok and result.permanent
    assert "loopback" in (result.error or "")
    assert plain_mailbox.received == []


async def test_other_attachments_and_unknown_screenshot_type(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    with_files = replace(
        bundle,
        screenshot=FileData("../../etc/passwd", "weird", b"\x00\x01"),
        attachments=[FileData("log <1>.txt", "text/plain", b"line 1\n")],
    )
    target = f"smtp://localhost:{plain_mailbox.port}?to=ops@example.com&from=b@example.com"
    result = await send(target, with_files)

    assert result.ok, result.error
    found = parts(plain_mailbox.received[0].message)
    [screenshot] = found["application/octet-stream"]
    assert screenshot.get_filename() == "passwd"
    attachment = next(p for p in found["text/plain"] if p.get_filename())
    assert attachment.get_filename() == "log _1_.txt"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://h/?to=a@b.c&from=d@e.f", "unsupported scheme"),
        ("smtp://?to=a@b.c&from=d@e.f", "no host"),
        ("smtp://h", "at least one recipient"),
        ("smtp://h?to=a@b.c", "need a sender"),
        ("smtp://h?to=not-an-address&from=d@e.f", "invalid email address"),
        ("smtp://h?to=a@b.c&from=d@e.f&starttls=maybe", "starttls must be one of"),
        ("smtps://h?to=a@b.c&from=d@e.f&starttls=off", "smtp:// only"),
        ("smtp://h?to=a@b.c&from=d@e.f&tls=on", "unknown parameter 'tls'"),
        ("smtp://h/path?to=a@b.c&from=d@e.f", "take no path"),
        ("smtp://h?to=a@b.c&from=d@e.f&ca_file=relative.pem", "absolute path"),
        ("smtp://h:99999?to=a@b.c&from=d@e.f", "cannot parse"),
        ("smtp://h?to=a@b.c%0d%0aBcc:x@y.z&from=d@e.f", "invalid email address"),
    ],
)
def test_check_url_refuses(target: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        email_transport.check_url(target)


def test_check_url_accepts_and_defaults_sender_to_user() -> None:
    email_transport.check_url("smtp://bugs%40example.com:pw@mail.example.com:587?to=a@b.c,d@e.f")
    email_transport.check_url("smtps://mail.example.com?to=a@b.c&from=d@e.f")
    email_transport.check_url("smtp://[2001:db8::1]:25?to=a@b.c&from=d@e.f&starttls=require")


class _HangOnQuit(SMTP):
    async def smtp_QUIT(self, arg: str) -> None:
        await asyncio.Event().wait()  # never says goodbye


class _HangOnQuitController(Controller):
    def factory(self) -> SMTP:
        return _HangOnQuit(self.handler, **self.SMTP_kwargs)


async def test_accepted_message_is_a_success_even_if_quit_hangs(
    bundle: ReportBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once DATA is accepted a retry would duplicate the email: a hung QUIT changes nothing."""
    monkeypatch.setattr(email_transport, "QUIT_TIMEOUT", 0.2)
    received: list[Received] = []
    port = free_port()
    controller = _HangOnQuitController(Handler(received), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        target = f"smtp://localhost:{port}?to=ops@example.com&from=b@example.com"
        result = await send(target, bundle, timeout=5)
    finally:
        controller.stop()

    assert result.ok, result.error
    assert len(received) == 1


async def test_user_without_password_is_only_the_sender(
    plain_mailbox: Mailbox, bundle: ReportBundle
) -> None:
    target = f"smtp://bugs%40example.com@localhost:{plain_mailbox.port}?to=ops@example.com"
    result = await send(target, bundle)

    assert result.ok, result.error
    [got] = plain_mailbox.received
    assert got.envelope.mail_from == "bugs@example.com" and not got.authenticated
