"""The client's IP address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=4096)  # a few clients send most requests; each parsed once
def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [::1]:1234
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 1.2.3.4:5678
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Network]) -> bool:
    return any(addr in net for net in nets)


def client_ip(scope: Scope, trusted: Sequence[Network]) -> str:
    """The peer address, or, behind trusted proxies, the right-most untrusted forwarded hop."""
    peer = scope.get("client")
    peer_ip = _parse(peer[0]) if peer else None
    if peer_ip is None:
        return ""
    if not trusted or not _trusted(peer_ip, trusted):
        return str(peer_ip)
    forwarded: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded.extend(value.decode("latin-1").split(","))
    for hop in reversed(forwarded):
        addr = _parse(hop)
        if addr is None:
            break
        if not _trusted(addr, trusted):
            return str(addr)
    return str(peer_ip)
