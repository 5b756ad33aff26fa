"""session_batches.data: small batches stored in their row instead of a blob

Revision ID: 0006_session_batch_data
Revises: 0002_sessions

A batch row names its bytes either by ``blob_key`` (the blob store, as before) or holds them
in ``data``; exactly one of the two is set. Existing rows keep their blobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_session_batch_data"
down_revision = "0002_sessions"
branch_labels = None
depends_on = None

CHECK = "ck_session_batches_one_place"


def upgrade() -> None:
    # SQLite cannot alter a column's nullability: batch mode (env.py) rebuilds the table.
    with op.batch_alter_table("session_batches") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary, nullable=True))
        batch.alter_column("blob_key", existing_type=sa.String(512), nullable=True)
        batch.create_check_constraint(op.f(CHECK), "(blob_key IS NULL) <> (data IS NULL)")
    if _postgres_has_lz4():
        # Batches are compressed in TOAST; lz4 costs PostgreSQL far less CPU per commit than
        # the default pglz, at nearly the same size (PostgreSQL 14+ built with lz4).
        op.execute("ALTER TABLE session_batches ALTER COLUMN data SET COMPRESSION lz4")


def _postgres_has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).scalar()
    return bool(found)


def downgrade() -> None:
    inline = op.get_bind().execute(
        sa.text("SELECT count(*) FROM session_batches WHERE data IS NOT NULL")
    )
    if inline.scalar():
        raise RuntimeError(
            "session_batches holds batches stored in the database (data): downgrading would "
            "lose them; delete those sessions first"
        )
    with op.batch_alter_table("session_batches") as batch:
        batch.drop_constraint(op.f(CHECK), type_="check")
        batch.alter_column("blob_key", existing_type=sa.String(512), nullable=False)
        batch.drop_column("data")
