"""Session recordings: sessions (web and mobile), their batches and mobile images."""

from __future__ import annotations

import sqlalchemy as sa

from fieldreport.storage.schema.base import UTCDateTime, metadata

sessions = sa.Table(
    "sessions",
    metadata,
    # The recording UUID: what reports name in `recording` and backends send as `uuid`.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("platform", sa.String(16), nullable=False),  # web | ios | android | mobile
    sa.Column("user_uuid", sa.String(64), nullable=False),
    sa.Column("tracker_version", sa.String(64), nullable=False, server_default=""),
    sa.Column("rev_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("user_os_version", sa.String(64), nullable=False, server_default=""),
    sa.Column("user_device", sa.String(128), nullable=False, server_default=""),
    sa.Column("user_device_type", sa.Integer, nullable=True),
    sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
    sa.Column("performance", sa.JSON, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("first_batch_at", UTCDateTime, nullable=True),
    sa.Column("last_batch_at", UTCDateTime, nullable=True),
    sa.Column("batch_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("byte_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_sessions_project_started", "project_id", "started_at"),
)

session_batches = sa.Table(
    "session_batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "session_id",
        sa.String(64),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("encoding", sa.String(16), nullable=False, server_default=""),
    # A batch's bytes, exactly as sent, are in one of two places: small batches in `data`
    # (committed with the row), larger ones in the blob store under `blob_key`.
    sa.Column("blob_key", sa.String(512), nullable=True),
    sa.Column("data", sa.LargeBinary, nullable=True),
    # How `data` is stored: NULL exactly as sent, "zlib" deflated by the server (reads inflate).
    sa.Column("codec", sa.String(16), nullable=True),
    sa.UniqueConstraint("session_id", "seq", name="uq_session_batches_seq"),
    sa.CheckConstraint("(blob_key IS NULL) <> (data IS NULL)", name="one_place"),
)

session_images = sa.Table(
    "session_images",
    metadata,
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("hash", sa.String(128), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False, server_default=""),
    sa.Column("blob_key", sa.String(512), nullable=False),
    sa.Column("use_count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=False),
    sa.Index("ix_session_images_popular", "project_id", "use_count"),
)
