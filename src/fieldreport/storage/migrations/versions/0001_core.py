"""core: projects, allowed origins, reports and report files

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("public_key_hash", sa.String(64), nullable=False),
        sa.Column("secret_key_hash", sa.String(64), nullable=False),
        sa.Column("public_key_hint", sa.String(16), nullable=False),
        sa.Column("secret_key_hint", sa.String(16), nullable=False),
        sa.Column("last_ticketnr", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
        sa.UniqueConstraint("public_key_hash", name="uq_projects_public_key_hash"),
        sa.UniqueConstraint("secret_key_hash", name="uq_projects_secret_key_hash"),
    )
    op.create_table(
        "project_origins",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "origin", name="pk_project_origins"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_project_origins_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_project_origins_origin", "project_origins", ["origin"])
    op.create_table(
        "reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("ticketnr", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("sendercomment", sa.Text, nullable=False, server_default=""),
        sa.Column("senderemail", sa.String(320), nullable=False, server_default=""),
        sa.Column("additionalinfo", sa.Text, nullable=False, server_default=""),
        sa.Column("browser", sa.Text, nullable=False, server_default=""),
        sa.Column("ipaddress", sa.String(45), nullable=False, server_default=""),
        sa.Column("referer", sa.Text, nullable=False, server_default=""),
        sa.Column("recording", sa.String(64), nullable=True),
        sa.Column("notelist", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_reports_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "ticketnr", name="uq_reports_project_ticketnr"),
    )
    op.create_index("ix_reports_project_created", "reports", ["project_id", "created_at"])
    op.create_index("ix_reports_recording", "reports", ["recording"])
    op.create_table(
        "report_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_files"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name="fk_report_files_report_id_reports",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("report_id", "role", "position", name="uq_report_files_slot"),
    )


def downgrade() -> None:
    op.drop_table("report_files")
    op.drop_index("ix_reports_recording", "reports")
    op.drop_index("ix_reports_project_created", "reports")
    op.drop_table("reports")
    op.drop_index("ix_project_origins_origin", "project_origins")
    op.drop_table("project_origins")
    op.drop_table("projects")
