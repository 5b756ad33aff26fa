from __future__ import annotations

import ipaddress

from fieldreport.ingest.clientip import client_ip


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {
        "client": (peer, 1234),
        "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded],
    }


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


def test_untrusted_peer_is_the_client() -> None:
    assert client_ip(scope("198.51.100.7", "203.0.113.9"), TRUSTED) == "198.51.100.7"
    assert client_ip(scope("127.0.0.1", "203.0.113.9"), []) == "127.0.0.1"


def test_trusted_proxy_chain_takes_rightmost_untrusted_hop() -> None:
    s = scope("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3")
    assert client_ip(s, TRUSTED) == "203.0.113.9"


def test_garbage_forwarded_falls_back_to_peer() -> None:
    assert client_ip(scope("127.0.0.1", "not-an-ip"), TRUSTED) == "127.0.0.1"
    assert client_ip(scope("10.0.0.1", "[2001:db8::1]:443"), TRUSTED) == "2001:db8::1"
