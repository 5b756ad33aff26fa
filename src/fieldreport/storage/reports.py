"""Queries on reports and their stored files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.pq.abc import PGresult
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from fieldreport.storage import driver
from fieldreport.storage.bulk import RowInsert
from fieldreport.storage.plainsql import execute, in_list, refuse_naive
from fieldreport.storage.plainsql import rows as plain_rows
from fieldreport.storage.projects import take_ticketnrs
from fieldreport.storage.schema.core import projects, report_files, reports

SCREENSHOT = "screenshot"
ATTACHMENT = "attachment"


# Read-only, but not frozen: a frozen dataclass sets each field in __init__ through
# object.__setattr__ (~600 instructions a field), and the delivery worker loads these for
# every delivery.
@dataclass
class StoredFile:
    role: str
    position: int
    filename: str
    content_type: str
    size: int
    sha256: str
    blob_key: str


@dataclass
class ReportFields:
    """What a client sends; the names are the push contract of seed 000."""

    subject: str = ""
    sendercomment: str = ""
    senderemail: str = ""
    additionalinfo: str = ""
    browser: str = ""
    ipaddress: str = ""
    referer: str = ""
    recording: str | None = None
    notelist: list[str] = field(default_factory=list)


@dataclass
class Report:
    id: str
    project_id: int
    project_name: str
    ticketnr: int
    created_at: datetime
    fields: ReportFields
    files: list[StoredFile]

    @property
    def screenshot(self) -> StoredFile | None:
        return next((f for f in self.files if f.role == SCREENSHOT), None)

    @property
    def attachments(self) -> list[StoredFile]:
        return [f for f in self.files if f.role == ATTACHMENT]


@dataclass(frozen=True)
class NewReport:
    """An accepted report's rows, before its ticket number is known.

    With ``key_hash`` (the public key the request came with, found through a cache), the
    writer's transaction first checks that the key still belongs to ``project_id`` and, with
    ``origin`` (the request's normalised ``Origin``), that the project still allows it."""

    report_id: str
    project_id: int
    created_at: datetime
    fields: ReportFields
    files: list[StoredFile]
    key_hash: str | None = None
    origin: str | None = None


# Built once (the batch writer inserts reports in every transaction of reports).
_INSERT_REPORTS = reports.insert()
_INSERT_FILES = report_files.insert()


# The batch writer on PostgreSQL (psycopg): the same rows as one JSON text each, straight on
# libpq (pg_insert_reports), not Core's multi-row inserts (a parameter dict and its processing
# per row, the statement's execution context, psycopg's cursor adapting each value). With the
# ticket update and the delivery rows also on libpq, the writer thread's instructions per
# report went ~392k -> ~69k (bench.reports_inproc --postgresql under callgrind).
_PG_INSERT_REPORTS = RowInsert(
    reports,
    ("id", "project_id", "ticketnr", "created_at", "subject", "sendercomment", "senderemail",
     "additionalinfo", "browser", "ipaddress", "referer", "recording", "notelist"),
)  # fmt: skip
_PG_INSERT_FILES = RowInsert(
    report_files,
    ("report_id", "role", "position", "filename", "content_type", "size", "sha256", "blob_key"),
)


def insert_reports(conn: Connection, rows: list[NewReport]) -> list[int]:
    """Insert reports and their files in the caller's transaction (multi-row statements and
    one ticket-counter update per project); return their ticket numbers in order."""
    if conn.dialect.driver == "psycopg":
        return pg_insert_reports(conn, rows)[0]
    ticketnrs = _take_ticketnrs(conn, rows)
    conn.execute(
        _INSERT_REPORTS,
        [
            {
                "id": row.report_id,
                "project_id": row.project_id,
                "ticketnr": ticketnr,
                "created_at": row.created_at,
                "subject": row.fields.subject,
                "sendercomment": row.fields.sendercomment,
                "senderemail": row.fields.senderemail,
                "additionalinfo": row.fields.additionalinfo,
                "browser": row.fields.browser,
                "ipaddress": row.fields.ipaddress,
                "referer": row.fields.referer,
                "recording": row.fields.recording,
                "notelist": list(row.fields.notelist),
            }
            for row, ticketnr in zip(rows, ticketnrs, strict=True)
        ],
    )
    files = [
        {
            "report_id": row.report_id,
            "role": f.role,
            "position": f.position,
            "filename": f.filename,
            "content_type": f.content_type,
            "size": f.size,
            "sha256": f.sha256,
            "blob_key": f.blob_key,
        }
        for row in rows
        for f in row.files
    ]
    if files:
        conn.execute(_INSERT_FILES, files)
    return ticketnrs


def _take_ticketnrs(conn: Connection, rows: list[NewReport]) -> list[int]:
    ticketnrs: list[int] = [0] * len(rows)
    by_project: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_project.setdefault(row.project_id, []).append(i)
    # Sorted, so concurrent transactions lock project rows in one order (no deadlocks).
    for project_id, indexes in sorted(by_project.items()):
        first = take_ticketnrs(conn, project_id, len(indexes))
        for offset, i in enumerate(indexes):
            ticketnrs[i] = first + offset
    return ticketnrs


def pg_insert_reports(
    conn: Connection,
    rows: list[NewReport],
    then: str = "SELECT 1",
    then_params: Sequence[bytes | None] = (),
) -> tuple[list[int], PGresult]:
    """psycopg (the batch writer on PostgreSQL): :func:`insert_reports` with the reports
    and their files in one statement on libpq, two data-modifying ``WITH`` queries of one
    JSON text each (see :meth:`RowInsert.pg_json_insert`), which ends with the query ``then`` (its
    parameters ``$3, ...``): the ticket numbers, and its result. The report writer asks for
    the projects' first destinations there, so that the reports, their files and that
    lookup are one round trip, not three: the writer's PostgreSQL backend then spent ~250
    µs of CPU a report, not ~276 (bench.reports_inproc --postgresql, its ticks in /proc, 5
    paired runs, 4 lower; ±10% noise), for the same instructions in our writer thread.
    The foreign key of the files is checked at the end of the statement, once both inserts
    are done. The notes go in as the text Core stores (the dialect's JSON serializer,
    ``json.dumps`` unless set)."""
    ticketnrs = _take_ticketnrs(conn, rows)
    dumps = getattr(conn.dialect, "_json_serializer", None) or json.dumps
    values = []
    for row, ticketnr in zip(rows, ticketnrs, strict=True):
        refuse_naive(row.created_at)
        f = row.fields
        values.append(
            (
                row.report_id,
                row.project_id,
                ticketnr,
                row.created_at,
                f.subject,
                f.sendercomment,
                f.senderemail,
                f.additionalinfo,
                f.browser,
                f.ipaddress,
                f.referer,
                f.recording,
                dumps(list(f.notelist)),
            )
        )
    files = [
        (
            row.report_id,
            f.role,
            f.position,
            f.filename,
            f.content_type,
            f.size,
            f.sha256,
            f.blob_key,
        )
        for row in rows
        for f in row.files
    ]
    sql = _pg_statements.get(then)
    if sql is None:
        dialect = conn.dialect
        sql = _pg_statements[then] = (
            f"WITH _reports AS ({_PG_INSERT_REPORTS.pg_json_insert(dialect, 1)}),"
            f" _files AS ({_PG_INSERT_FILES.pg_json_insert(dialect, 2)}) {then}"
        ).encode()
    params = [RowInsert.pg_json_rows(values), RowInsert.pg_json_rows(files), *then_params]
    zeros = [0] * len(params)
    return ticketnrs, driver.pg_exec_params(conn, sql, params, zeros, zeros)


_pg_statements: dict[str, bytes] = {}


async def insert_report(
    conn: AsyncConnection,
    *,
    report_id: str,
    project_id: int,
    created_at: datetime,
    fields: ReportFields,
    files: list[StoredFile],
) -> int:
    """Insert one report and its files in the caller's transaction; its ticket number."""
    row = NewReport(report_id, project_id, created_at, fields, files)
    return (await conn.run_sync(insert_reports, [row]))[0]


_REPORT_COLUMNS = (*reports.c, projects.c.name.label("project_name"))


def _fields(m: Any) -> ReportFields:
    return ReportFields(
        subject=m["subject"],
        sendercomment=m["sendercomment"],
        senderemail=m["senderemail"],
        additionalinfo=m["additionalinfo"],
        browser=m["browser"],
        ipaddress=m["ipaddress"],
        referer=m["referer"],
        recording=m["recording"],
        notelist=list(m["notelist"] or []),
    )


def _files_query(report_ids: list[str]) -> sa.Select[Any]:
    return (
        sa.select(report_files)
        .where(report_files.c.report_id.in_(report_ids))
        .order_by(report_files.c.report_id, report_files.c.role.desc(), report_files.c.position)
    )


def _stored_files(report_ids: list[str], rows: Any) -> dict[str, list[StoredFile]]:
    out: dict[str, list[StoredFile]] = {rid: [] for rid in report_ids}
    for r in rows:
        m = r._mapping
        out[m["report_id"]].append(
            StoredFile(
                role=m["role"],
                position=m["position"],
                filename=m["filename"],
                content_type=m["content_type"],
                size=m["size"],
                sha256=m["sha256"],
                blob_key=m["blob_key"],
            )
        )
    return out


async def _files_for(conn: AsyncConnection, report_ids: list[str]) -> dict[str, list[StoredFile]]:
    if not report_ids:
        return {}
    return _stored_files(report_ids, await conn.execute(_files_query(report_ids)))


def _report(m: Any, files: list[StoredFile]) -> Report:
    return Report(
        id=m["id"],
        project_id=m["project_id"],
        project_name=m["project_name"],
        ticketnr=m["ticketnr"],
        created_at=m["created_at"],
        fields=_fields(m),
        files=files,
    )


async def get_report(conn: AsyncConnection, report_id: str) -> Report | None:
    row = (
        await conn.execute(
            sa.select(*_REPORT_COLUMNS)
            .join_from(reports, projects, reports.c.project_id == projects.c.id)
            .where(reports.c.id == report_id)
        )
    ).first()
    if row is None:
        return None
    files = await _files_for(conn, [report_id])
    return _report(row._mapping, files[report_id])


async def existing_report_ids(conn: AsyncConnection, report_ids: list[str]) -> set[str]:
    if not report_ids:
        return set()
    rows = await conn.execute(sa.select(reports.c.id).where(reports.c.id.in_(report_ids)))
    return {r[0] for r in rows}


# The delivery worker's claim loads every claimed report through these: plain SQL (see
# storage.plainsql), the reports' columns and then their files, each as the Core queries above.
_PLAIN_FIELDS = (
    "subject", "sendercomment", "senderemail", "additionalinfo", "browser", "ipaddress",
    "referer", "recording", "notelist",
)  # fmt: skip
_PLAIN_REPORT_COLUMNS = (
    reports.c.id,
    reports.c.project_id,
    projects.c.name,
    reports.c.ticketnr,
    reports.c.created_at,
    *(reports.c[name] for name in _PLAIN_FIELDS),
)
_PLAIN_REPORTS = (
    f"SELECT r.id, r.project_id, p.name, r.ticketnr, r.created_at,"
    f" {', '.join(f'r.{name}' for name in _PLAIN_FIELDS)} FROM reports r"
    " JOIN projects p ON r.project_id = p.id WHERE r.id "
)
_PLAIN_FILES = (
    "SELECT report_id, role, position, filename, content_type, size, sha256, blob_key"
    " FROM report_files WHERE report_id "
)
_PLAIN_FILES_ORDER = " ORDER BY report_id, role DESC, position"


def get_reports(conn: Connection, report_ids: list[str]) -> dict[str, Report]:
    """Several reports by id, in two queries (synchronous: the delivery worker loads its
    claimed batch in the claim's transaction)."""
    if not report_ids:
        return {}
    dialect = conn.dialect
    fragment, values = in_list(dialect, report_ids, "varchar")
    found = list(
        plain_rows(dialect, execute(conn, _PLAIN_REPORTS + fragment, values), _PLAIN_REPORT_COLUMNS)
    )
    if not found:
        return {}
    files: dict[str, list[StoredFile]] = {row[0]: [] for row in found}
    fragment, values = in_list(dialect, list(files), "varchar")
    for report_id, *stored in execute(conn, _PLAIN_FILES + fragment + _PLAIN_FILES_ORDER, values):
        files[report_id].append(StoredFile(*stored))
    out = {}
    for report_id, project_id, name, ticketnr, created_at, *fields in found:
        notelist = fields[-1]
        fields[-1] = list(notelist or [])
        out[report_id] = Report(
            report_id, project_id, name, ticketnr, created_at, ReportFields(*fields),
            files[report_id],
        )  # fmt: skip
    return out


async def list_reports(
    conn: AsyncConnection,
    *,
    project_id: int | None = None,
    limit: int = 50,
    before_ticketnr: int | None = None,
) -> list[Report]:
    """Newest first. Page with ``before_ticketnr`` (within one project)."""
    query = sa.select(*_REPORT_COLUMNS).join_from(
        reports, projects, reports.c.project_id == projects.c.id
    )
    if project_id is not None:
        query = query.where(reports.c.project_id == project_id)
        if before_ticketnr is not None:
            query = query.where(reports.c.ticketnr < before_ticketnr)
        query = query.order_by(reports.c.ticketnr.desc())
    else:
        query = query.order_by(reports.c.created_at.desc(), reports.c.id)
    rows = (await conn.execute(query.limit(limit))).all()
    files = await _files_for(conn, [r._mapping["id"] for r in rows])
    return [_report(r._mapping, files[r._mapping["id"]]) for r in rows]


async def count_reports(conn: AsyncConnection, project_id: int | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(reports)
    if project_id is not None:
        query = query.where(reports.c.project_id == project_id)
    return int((await conn.execute(query)).scalar_one())
