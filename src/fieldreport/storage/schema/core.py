"""Core tables: projects, their allowed origins, reports and report files."""

from __future__ import annotations

import sqlalchemy as sa

from fieldreport.storage.schema.base import UTCDateTime, metadata

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("public_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("public_key_hint", sa.String(16), nullable=False),
    sa.Column("secret_key_hint", sa.String(16), nullable=False),
    sa.Column("last_ticketnr", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

project_origins = sa.Table(
    "project_origins",
    metadata,
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("origin", sa.String(300), primary_key=True),
    sa.Index("ix_project_origins_origin", "origin"),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("ticketnr", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("sendercomment", sa.Text, nullable=False, server_default=""),
    sa.Column("senderemail", sa.String(320), nullable=False, server_default=""),
    sa.Column("additionalinfo", sa.Text, nullable=False, server_default=""),
    sa.Column("browser", sa.Text, nullable=False, server_default=""),
    sa.Column("ipaddress", sa.String(45), nullable=False, server_default=""),
    sa.Column("referer", sa.Text, nullable=False, server_default=""),
    sa.Column("recording", sa.String(64), nullable=True),
    sa.Column("notelist", sa.JSON, nullable=False),
    sa.UniqueConstraint("project_id", "ticketnr", name="uq_reports_project_ticketnr"),
    sa.Index("ix_reports_project_created", "project_id", "created_at"),
    sa.Index("ix_reports_recording", "recording"),
)

report_files = sa.Table(
    "report_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "report_id",
        sa.String(36),
        sa.ForeignKey("reports.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("blob_key", sa.String(512), nullable=False),
    sa.UniqueConstraint("report_id", "role", "position", name="uq_report_files_slot"),
)
