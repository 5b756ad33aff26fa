"""Delivery tables: destinations (an ordered chain per project), the outbox and its attempts."""

from __future__ import annotations

import sqlalchemy as sa

from fieldreport.storage.schema.base import UTCDateTime, metadata

# One row per destination; a project's chain is ordered by `position` (lowest = primary).
destinations = sa.Table(
    "destinations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),  # may hold credentials: never printed or logged
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("token", sa.Text, nullable=True),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("headers", sa.JSON, nullable=False),  # [[name, value], ...]
    sa.Column("retry_schedule", sa.JSON, nullable=False),  # seconds before each attempt
    sa.Column("timeout", sa.Float, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_destinations_project_position", "project_id", "position"),
)

# The outbox: one row per report, walking along the project's chain until delivered or dead.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "report_id", sa.String(36), sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "destination_id",
        sa.Integer,
        sa.ForeignKey("destinations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),  # chain position being tried
    sa.Column("status", sa.String(16), nullable=False),  # pending | failed | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),  # on this destination
    sa.Column("total_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_report", "report_id"),
    sa.Index("ix_deliveries_project_created", "project_id", "created_at"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("destination_id", sa.Integer, nullable=True),
    sa.Column("destination", sa.Text, nullable=False),  # the URL with secrets redacted
    sa.Column("worker", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=False, server_default=""),
    sa.Column("error", sa.Text, nullable=True),
    # in_flight | delivered | retry | next | dead | abandoned
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Index("ix_delivery_attempts_delivery", "delivery_id"),
)

# Keys for signing expiring download links in JSON pushes (shared by every server process).
delivery_signing_keys = sa.Table(
    "delivery_signing_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
