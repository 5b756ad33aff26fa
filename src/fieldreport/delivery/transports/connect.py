"""Opening TCP connections only to addresses that passed the SSRF check."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket

from fieldreport.delivery.ssrf import resolve_checked


async def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses, refused (BlockedDestination) when any is not public."""
    return await resolve_checked(host, port, allow_private=allow_private)


async def open_checked_socket(host: str, port: int, *, allow_private: bool) -> socket.socket:
    """A connected, non-blocking socket to the first reachable checked address of ``host``.

    Raises BlockedDestination for a refused address and OSError when none accepts.
    """
    loop = asyncio.get_running_loop()
    last_error: OSError | None = None
    for address in await checked_addresses(host, port, allow_private=allow_private):
        family = (
            socket.AF_INET6
            if isinstance(ipaddress.ip_address(address.split("%", 1)[0]), ipaddress.IPv6Address)
            else socket.AF_INET
        )
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (address, port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    if last_error is None:
        raise OSError(f"{host} has no address")
    raise last_error


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
