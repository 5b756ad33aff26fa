"""Statements straight on libpq (the PostgreSQL batch writer's psycopg connection): values
and rows as given, errors as SQLAlchemy's, as with the driver's cursor."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from fieldreport.state import AppState
from fieldreport.storage import driver
from fieldreport.storage.projects import NewProject, public_key_holders, secret_owners

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


def _owners(conn: Connection, items: list[list[str]]) -> list[Any]:
    [hashes] = items
    return [(secret_owners(conn, hashes), public_key_holders(conn, hashes))]


async def test_key_checks_on_libpq(state: AppState, project: NewProject) -> None:
    """The writer's key checks (projects._by_hash on libpq) find what the API's do."""
    async with state.db.read() as conn:
        secret, public = (
            await conn.execute(
                sa.text("SELECT secret_key_hash, public_key_hash FROM projects WHERE id = :id"),
                {"id": project.project.id},
            )
        ).one()
    [(owners, holders)] = await state.writer.submit_many(_owners, [[secret, public, 'x"\\']])
    assert owners == {secret: project.project.id}
    assert holders == {public: (project.project.id, set(project.project.origins))}
