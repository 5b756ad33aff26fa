"""Pytest fixtures for tests that need a real S3 server.

Import the fixture into a conftest (or a test module) to use it::

    from tests.support.fixtures_s3 import s3_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.seaweed import S3Server, seaweed_s3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 server on 127.0.0.1, started once per test session (~1.5 s)."""
    with seaweed_s3() as server:
        yield server
