"""backend_events: logs and exceptions from the full-stack API

Revision ID: 0003_backend_events
Revises: 0002_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_backend_events"
down_revision = "0002_sessions"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backend_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("recording", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("level", sa.String(32), nullable=False, server_default=""),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("payload", sa.Text, nullable=False, server_default=""),
        sa.Column("metadata", sa.Text, nullable=False, server_default=""),
        sa.Column("origin", sa.Text, nullable=False, server_default=""),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_backend_events"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_backend_events_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_backend_events_recording", "backend_events", ["project_id", "recording", "timestamp"]
    )
    op.create_index("ix_backend_events_pending", "backend_events", ["pending", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_backend_events_pending", "backend_events")
    op.drop_index("ix_backend_events_recording", "backend_events")
    op.drop_table("backend_events")
