"""SSRF protection for destinations: refuse hosts that resolve to non-public addresses.

Checked when a destination is added and again on every send, after DNS resolution, so a
name that later resolves to 127.0.0.1 or 169.254.169.254 (DNS rebinding) is still refused.
``FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS=1`` turns the check off (tests, on-premise receivers).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(OSError):
    """The destination resolves to a loopback, private, link-local or other non-public address."""


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be a destination, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return forbidden_reason(mapped)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (this includes cloud metadata at 169.254.169.254)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


def check_ip(ip: str, host: str) -> None:
    reason = forbidden_reason(ipaddress.ip_address(ip.split("%", 1)[0]))
    if reason is not None:
        raise BlockedDestination(
            f"{host} resolves to {ip}, {reason}; destinations must be public "
            "(set FIELDREPORT_ALLOW_PRIVATE_DESTINATIONS=1 to allow private receivers)"
        )


def checked_literal(host: str, *, allow_private: bool) -> str | None:
    """The address ``host`` is when it is written as one (``[brackets]`` allowed), refused
    (:class:`BlockedDestination`) when it is not public unless ``allow_private``; None for a
    name, which only resolving can check."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if not allow_private:
        check_ip(str(literal), host)
    return str(literal)


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve ``host`` and return its addresses, refusing any non-public one."""
    literal = checked_literal(host, allow_private=allow_private)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedDestination(f"cannot resolve {host}: {exc.strerror}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    if not allow_private:
        for address in addresses:
            check_ip(address, host)
    return addresses


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses non-public addresses at connection time."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for result in results:
                check_ip(result["host"], host)
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_connector(*, allow_private: bool, **kwargs: Any) -> aiohttp.TCPConnector:
    """A connector whose name lookups are checked (literal IPs must be checked with
    :func:`resolve_checked` before the request, as aiohttp does not resolve them)."""
    return aiohttp.TCPConnector(resolver=GuardedResolver(allow_private=allow_private), **kwargs)
