"""Connecting only to checked addresses, trying each in turn."""

from __future__ import annotations

import asyncio
import socket

import pytest

from fieldreport.delivery.ssrf import BlockedDestination
from fieldreport.delivery.transports import connect
from fieldreport.delivery.transports.connect import open_checked_socket


async def test_ipv6_literal(unused_tcp_port_v6: int) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "::1", unused_tcp_port_v6)
    try:
        sock = await open_checked_socket("::1", unused_tcp_port_v6, allow_private=True)
        assert sock.family == socket.AF_INET6
        sock.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_falls_back_to_the_next_address(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port_v6: int, dead_port: int
) -> None:
    # A name with two addresses, the first one down: only DNS could produce this for real.
    async def two_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
        return ["127.0.0.1", "::1"]

    monkeypatch.setattr(connect, "checked_addresses", two_addresses)
    server = await asyncio.start_server(lambda r, w: w.close(), "::1", dead_port)
    try:
        sock = await open_checked_socket("dual.example", dead_port, allow_private=True)
        assert sock.getpeername()[0] == "::1"
        sock.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_refused_everywhere_raises_the_last_error(dead_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        await open_checked_socket("127.0.0.1", dead_port, allow_private=True)


async def test_blocked_before_connecting(dead_port: int) -> None:
    with pytest.raises(BlockedDestination):
        await open_checked_socket("127.0.0.1", dead_port, allow_private=False)


@pytest.fixture
def unused_tcp_port_v6() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])
