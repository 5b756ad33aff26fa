"""Statements straight on libpq (the PostgreSQL batch writer's psycopg connection): values
and rows as given, errors as SQLAlchemy's, as with the driver's cursor."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from fieldreport.state import AppState
from fieldreport.storage import driver

pytestmark = pytest.mark.parametrize("backend", ["postgresql+s3"], indirect=True)

TRICKY = ["plain", 'a "quoted" one', "back\\slash", "comma, brace} {", "", "ünïcode", "NULL"]


def _echo(conn: Connection, items: list[Any]) -> list[Any]:
    result = driver.pg_exec_params(
        conn,
        b"SELECT v, $2::int + 1, NULL FROM unnest($1::varchar[]) WITH ORDINALITY AS u(v, n)"
        b" ORDER BY n",
        [driver.pg_text_array(TRICKY), b"41"],
        [0, 0],
        [0, 0],
    )
    return [driver.pg_text_rows(result)]


async def test_parameters_and_rows_go_through_as_given(state: AppState) -> None:
    [rows] = await state.writer.submit_many(_echo, [None])
    assert rows == [(v, "42", None) for v in TRICKY]


def _fail(conn: Connection, items: list[bytes]) -> list[Any]:
    driver.pg_exec_params(conn, items[0], [b"x" * 100], [0], [0])
    return [None]


async def test_errors_are_sqlalchemys(state: AppState) -> None:
    with pytest.raises(sa.exc.DataError):  # not a number
        await state.writer.submit_many(_fail, [b"SELECT $1::smallint"])
    with pytest.raises(sa.exc.ProgrammingError):
        await state.writer.submit_many(_fail, [b"SELECT nothing FROM $1"])
    # the writer goes on
    [rows] = await state.writer.submit_many(_echo, [None])
    assert len(rows) == len(TRICKY)
