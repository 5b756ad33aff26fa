from __future__ import annotations

import pytest

from fieldreport.delivery.ssrf import BlockedDestination, GuardedResolver, resolve_checked


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "fd00:ec2::254",
        "0.0.0.0",
        "100.64.0.1",
    ],
)
async def test_non_public_hosts_refused(host: str) -> None:
    with pytest.raises(BlockedDestination):
        await resolve_checked(host, 80, allow_private=False)


async def test_public_literal_allowed_and_private_allowed_when_asked() -> None:
    assert await resolve_checked("93.184.215.14", 443, allow_private=False) == ["93.184.215.14"]
    assert await resolve_checked("localhost", 80, allow_private=True)


async def test_resolver_refuses_names_resolving_to_loopback() -> None:
    resolver = GuardedResolver(allow_private=False)
    try:
        with pytest.raises(BlockedDestination, match="loopback"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    allowed = GuardedResolver(allow_private=True)
    try:
        assert await allowed.resolve("localhost", 80)
    finally:
        await allowed.close()
