"""sessions: recordings, their batches and mobile images

Revision ID: 0002_sessions
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sessions"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("user_uuid", sa.String(64), nullable=False),
        sa.Column("tracker_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("rev_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("user_os_version", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_device", sa.String(128), nullable=False, server_default=""),
        sa.Column("user_device_type", sa.Integer, nullable=True),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
        sa.Column("performance", sa.JSON, nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("first_batch_at", TS, nullable=True),
        sa.Column("last_batch_at", TS, nullable=True),
        sa.Column("batch_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("byte_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_sessions_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_sessions_project_started", "sessions", ["project_id", "started_at"])
    op.create_table(
        "session_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("encoding", sa.String(16), nullable=False, server_default=""),
        sa.Column("blob_key", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_session_batches"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_session_batches_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("session_id", "seq", name="uq_session_batches_seq"),
    )
    op.create_table(
        "session_images",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False, server_default=""),
        sa.Column("blob_key", sa.String(512), nullable=False),
        sa.Column("use_count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "hash", name="pk_session_images"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_session_images_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_session_images_popular", "session_images", ["project_id", "use_count"])


def downgrade() -> None:
    op.drop_index("ix_session_images_popular", "session_images")
    op.drop_table("session_images")
    op.drop_table("session_batches")
    op.drop_index("ix_sessions_project_started", "sessions")
    op.drop_table("sessions")
