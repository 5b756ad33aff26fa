"""Backend events from the full-stack API: logs and exceptions tied to a recording."""

from __future__ import annotations

import sqlalchemy as sa

from fieldreport.storage.schema.base import UTCDateTime, metadata

# BIGINT on PostgreSQL; INTEGER on SQLite so the column stays the rowid alias.
EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

backend_events = sa.Table(
    "backend_events",
    metadata,
    sa.Column("id", EventId, primary_key=True, autoincrement=True),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    # The recording UUID the backend named (`uuid` in the API); no foreign key on purpose:
    # an event may arrive before its session starts (see `pending`).
    sa.Column("recording", sa.String(64), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),  # log | exception
    sa.Column("level", sa.String(32), nullable=False, server_default=""),
    sa.Column("timestamp", sa.BigInteger, nullable=False),  # unix milliseconds, from the backend
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("payload", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", sa.Text, nullable=False, server_default=""),
    sa.Column("origin", sa.Text, nullable=False, server_default=""),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # True while no session or report of the project names the recording yet: such events
    # are kept for FIELDREPORT_FULLSTACK_PENDING_TTL and then swept if it never shows up.
    sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_backend_events_recording", "project_id", "recording", "timestamp"),
    sa.Index("ix_backend_events_pending", "pending", "received_at"),
)
