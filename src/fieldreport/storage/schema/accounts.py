"""Dashboard accounts: users, their project memberships, login sessions and failed logins."""

from __future__ import annotations

import sqlalchemy as sa

from fieldreport.storage.schema.base import UTCDateTime, metadata

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # stored lower-cased
    sa.Column("password_hash", sa.String(255), nullable=False),  # argon2id, PHC string
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    # Set for one-time passwords: the user must choose a new one at the next login.
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Index("ix_project_members_user", "user_id"),
)

# A login: the cookie holds a random token, the table only its SHA-256 (a stolen database
# does not yield usable cookies). Logout deletes the row, so it works across processes.
user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ip", sa.String(45), nullable=False, server_default=""),
    sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
    sa.Index("ix_user_sessions_user", "user_id"),
    sa.Index("ix_user_sessions_expires", "expires_at"),
)

# Failed logins, one row each, keyed by "email:<address>" and "ip:<address>": the rate
# limit counts rows in a sliding window, shared by every server process.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(400), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_login_failures_key_at", "key", "at"),
)
