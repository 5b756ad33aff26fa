"""plainsql: SQLite UTC timestamps written and read as Core does, IN lists of a few lengths."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from fieldreport.storage import plainsql
from fieldreport.storage.schema.delivery import deliveries

DIALECT = sqlite.dialect()
COLUMN = deliveries.c.next_attempt_at


def _values() -> list[datetime]:
    rng = random.Random(7)
    values = [
        datetime(2026, 11, 23, 8, 54, 54, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),  # a year of three digits
        datetime(2026, 5, 5, 1, 2, 3, 999_999, tzinfo=timezone(timedelta(hours=5))),
    ]
    for _ in range(300):
        zone = timezone(timedelta(minutes=rng.randint(-900, 900)))
        values.append(datetime(rng.randint(2, 9998), rng.randint(1, 12), rng.randint(1, 28),
                               rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                               rng.choice([0, rng.randint(0, 999_999)]), tzinfo=zone))  # fmt: skip
    return values


def _read(texts: list[str | None]) -> list[datetime | None]:
    """``texts`` read back through :func:`plainsql.rows` as the column's values."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER, at TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    cursor = conn.execute("SELECT at FROM t ORDER BY n")
    return [value for (value,) in plainsql.rows(DIALECT, cursor, (COLUMN,))]


def test_sqlite_utc_timestamps_are_written_and_read_as_core_does() -> None:
    core_bind = COLUMN.type.dialect_impl(DIALECT).bind_processor(DIALECT)
    core_result = COLUMN.type.dialect_impl(DIALECT).result_processor(DIALECT, None)
    assert core_bind is not None and core_result is not None
    bind = plainsql.binder(DIALECT, COLUMN)
    assert bind is not core_bind
    values = _values()
    texts = [bind(value) for value in values]
    assert texts == [core_bind(value) for value in values]
    read = _read([*texts, None])
    assert read == [*(core_result(text) for text in texts), None] == [*values, None]
    assert all(value.tzinfo is UTC for value in read if value is not None)
    assert bind(None) is None
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 1, 1))  # naive on purpose
    # Text not written in Core's format (by hand, say) is still read as Core reads it.
    by_hand = ["2026-11-23 08:54:54", "2026-11-23 08:54:54.123", "2026-11-23"]
    assert _read(list(by_hand)) == [core_result(text) for text in by_hand]


def test_in_lists_come_in_a_few_lengths_and_select_the_same_rows() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(300)])
    shapes = set()
    for n in range(1, 129):
        wanted = list(range(0, 2 * n, 2))
        fragment, values = plainsql.in_list(DIALECT, wanted)
        shapes.add(fragment)
        assert len(values) >= n and set(values) == set(wanted)
        found = conn.execute(f"SELECT id FROM t WHERE id {fragment}", values).fetchall()
        assert sorted(i for (i,) in found) == wanted
        fragment, values = plainsql.not_in_list(DIALECT, wanted)
        found = conn.execute(f"SELECT count(*) FROM t WHERE id {fragment}", values).fetchone()
        assert found == (300 - n,)
    assert len(shapes) == 8  # 1, 2, 4, ..., 128


def test_padded() -> None:
    assert plainsql.padded([1]) == (1,)
    assert plainsql.padded([1, 2, 3]) == (1, 2, 3, 3)
    assert plainsql.padded([1, 2, 3, 4]) == (1, 2, 3, 4)
    assert plainsql.padded(list(range(5))) == (0, 1, 2, 3, 4, 4, 4, 4)


JSON_COLUMN = sa.Column("notes", sa.JSON)


def test_sqlite_json_is_read_as_core_reads_it() -> None:
    core = JSON_COLUMN.type.dialect_impl(DIALECT).result_processor(DIALECT, None)
    assert core is not None
    texts: list[object] = [
        '["first note", "second note"]', "[]", '{"a": 1, "a": 2}', '{"b": {"c": [null, true]}}',
        "123456789012345678901234567890", "-0.0", "2.5e-324", '"\\ud83d\\ude00"', '"\\u0000"',
        # refused by msgspec, read by Core's json.loads all the same
        "NaN", "[Infinity, -Infinity]", "1e400", '"\\ud800"',
        None, 5, 2.5,  # not text (a number stored in the column): as Core gives it
    ]  # fmt: skip
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (n INTEGER, notes)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    cursor = conn.execute("SELECT notes FROM t ORDER BY n")
    read = [value for (value,) in plainsql.rows(DIALECT, cursor, (JSON_COLUMN,))]
    expected = [core(text) for text in texts]
    assert repr(read) == repr(expected)  # same values and types (nan == nan is false)
    # What neither reads is still Core's error.
    for broken in ("[1,]", '"\x01"', "[1] x"):
        cursor = conn.execute("SELECT ?", (broken,))
        with pytest.raises(ValueError):
            list(plainsql.rows(DIALECT, cursor, (JSON_COLUMN,)))


@pytest.mark.parametrize("count", [0, 1, 2, 3, 37, 300, 1025])
@pytest.mark.parametrize("most", [1, 64, 124, 1024])
def test_power_of_two_slices_cover_the_rows_in_order(count: int, most: int) -> None:
    slices = list(plainsql.power_of_two_slices(count, most))
    sizes = [size for _, size in slices]
    assert all(size & (size - 1) == 0 and size <= most for size in sizes)
    assert sizes == sorted(sizes, reverse=True)
    assert [start for start, _ in slices] == [sum(sizes[:i]) for i in range(len(sizes))]
    assert sum(sizes) == count


def test_power_of_two_slices_take_the_largest_first() -> None:
    assert list(plainsql.power_of_two_slices(37, 1024)) == [(0, 32), (32, 4), (36, 1)]
    # 124 rows at most (999 SQLite variables // 8 columns): 64 is the largest power of two.
    assert [size for _, size in plainsql.power_of_two_slices(300, 124)] == [64] * 4 + [32, 8, 4]
