"""URL parsing and redaction shared by the email, FTP and SFTP transports."""

from __future__ import annotations

import pytest

from fieldreport.delivery.transports.urls import parse_destination_url, redact, scrub

PORTS = {"sftp": 22, "smtp": 25}
PARAMS = frozenset({"to", "passphrase", "key_file"})


def test_parse_decodes_user_password_path_and_keeps_plus() -> None:
    parsed = parse_destination_url(
        "sftp://us%40er:p%40ss%3Aw+rd@Files.Example.com/srv/my%20reports?to=ops+bugs@example.com&to=b@c.d",
        default_ports=PORTS,
        allowed_params=PARAMS,
    )
    assert parsed.scheme == "sftp"
    assert parsed.username == "us@er"
    assert parsed.password == "p@ss:w+rd"
    assert parsed.host == "files.example.com"
    assert parsed.port == 22
    assert parsed.path == "/srv/my reports"
    assert parsed.params("to") == ["ops+bugs@example.com", "b@c.d"]
    assert "p@ss" not in repr(parsed)


def test_ipv6_host_and_explicit_port() -> None:
    parsed = parse_destination_url(
        "SMTP://[2001:db8::1]:2525", default_ports=PORTS, allowed_params=PARAMS
    )
    assert (parsed.scheme, parsed.host, parsed.port) == ("smtp", "2001:db8::1", 2525)
    assert parsed.netloc_for_display == "[2001:db8::1]:2525"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("ftp://h/x", "unsupported scheme 'ftp'"),
        ("sftp://h/x#frag", "fragment"),
        ("sftp://h:0/x", "between 1 and 65535"),
        ("sftp://h:port/x", "cannot parse"),
        ("sftp://h/x?nope=1", "unknown parameter 'nope'"),
        ("sftp://h_!x/x", "invalid host name"),
        ("sftp://h/x\r\nDELE y", "control characters"),
    ],
)
def test_parse_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_destination_url(url, default_ports=PORTS, allowed_params=PARAMS)


def test_errors_never_echo_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_destination_url(
            "sftp://u:hunter2@h:99999/x", default_ports=PORTS, allowed_params=PARAMS
        )
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sftp://u:hunter2@h:22/x", "sftp://u:***@h:22/x"),
        ("smtp://u%40x:p%40ss@h?to=a@b.c", "smtp://u%40x:***@h?to=a@b.c"),
        ("sftp://u@h/x?key_file=/k&passphrase=sesame", "sftp://u@h/x?key_file=/k&passphrase=***"),
        ("ftp://h/x", "ftp://h/x"),
        ("sftp://u:a@b@h/x", "sftp://u:***@h/x"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redacted_from_parsed_url() -> None:
    parsed = parse_destination_url(
        "sftp://u:pw@h/x?key_file=/k&passphrase=sesame", default_ports=PORTS, allowed_params=PARAMS
    )
    assert parsed.redacted() == "sftp://u:***@h:22/x?key_file=/k&passphrase=***"
    assert sorted(parsed.secrets) == ["pw", "sesame"]


def test_scrub_removes_raw_and_encoded_secrets() -> None:
    text = "login failed for p@ss (p%40ss) and sesame"
    assert scrub(text, ["p@ss", "sesame", ""]) == "login failed for *** (***) and ***"
