"""Pooled random ids: well-formed, never repeated, and a forked child draws its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest

from fieldreport import randomids


def test_uuid4_and_hex_ids_are_well_formed_and_distinct() -> None:
    ids = [randomids.new_uuid4() for _ in range(2000)]  # several pool refills
    assert len(set(ids)) == len(ids)
    for text in ids[:50]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    hexes = {randomids.new_hex_id() for _ in range(600)}
    assert len(hexes) == 600 and all(len(h) == 32 and int(h, 16) >= 0 for h in hexes)


@pytest.mark.parametrize("new_id", [randomids.new_uuid4, randomids.new_hex_id])
def test_a_forked_child_does_not_repeat_the_parents_ids(new_id: Callable[[], str]) -> None:
    new_id()  # the parent holds a partly used pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "\n".join(new_id() for _ in range(10)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    parent = [new_id() for _ in range(10)]
    assert len(child) == 10 and not set(child) & set(parent)
