"""Shared pieces for the transport tests: a report bundle with a real PDF, a self-signed
certificate, free and dead ports on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fpdf import FPDF

from fieldreport.delivery.bundle import FileData, ReportBundle
from tests.conftest import free_port
from tests.support.images import png_bytes

REPORT_ID = "6f1c7a52-0d2e-4a8b-9a55-3b1f2f9e0c11"


def small_pdf(text: str = "Report #42") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text=text)
    return bytes(pdf.output())


def make_bundle(**overrides: Any) -> ReportBundle:
    bundle = ReportBundle(
        reportid=REPORT_ID,
        ticketnr=42,
        ticketurl=f"https://fieldreport.example/reports/{REPORT_ID}",
        project="shop",
        created_at="2026-11-22T14:00:00Z",
        subject="Checkout button does nothing",
        browser="Firefox 133.0",
        ipaddress="203.0.113.7",
        referer="https://shop.example/checkout",
        senderemail="anna@example.com",
        sendercomment="I clicked twice.\nNothing happened.",
        additionalinfo='{"cart": 3}',
        notelist=["arrow on the button", "no spinner"],
        recording="0b7e1c3e-3c1b-4a5e-8d7e-2f4b5a6c7d8e",
        screenshot=FileData("screen.png", "image/png", png_bytes()),
        pdf=small_pdf(),
        backend_events=[{"level": "error", "message": "payment gateway timeout", "ts": 1}],
    )
    return replace(bundle, **overrides)


@pytest.fixture
def bundle() -> ReportBundle:
    return make_bundle()


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1 (usable as its own CA)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@pytest.fixture
def dead_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    return free_port()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word (a hung server)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    yield port
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


@contextlib.contextmanager
def background(loop_step: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    """Run ``loop_step`` repeatedly in a thread until the block ends."""
    done = threading.Event()

    def run() -> None:
        while not done.is_set():
            loop_step()
        stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
