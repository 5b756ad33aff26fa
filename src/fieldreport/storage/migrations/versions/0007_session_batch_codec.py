"""session_batches.codec: batches stored in their row may be deflated by the server

Revision ID: 0007_session_batch_codec
Revises: 0006_session_batch_data

``codec`` NULL: ``data`` holds the batch exactly as sent (every row before this revision).
``codec = 'zlib'``: ``data`` holds it deflated (zlib format); reading inflates it back to the
bytes as sent. Downgrading inflates such rows first, so nothing is lost.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0007_session_batch_codec"
down_revision = "0006_session_batch_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("session_batches") as batch:
        batch.add_column(sa.Column("codec", sa.String(16), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    while True:
        rows = bind.execute(
            sa.text("SELECT id, data FROM session_batches WHERE codec = 'zlib' LIMIT 500")
        ).all()
        if not rows:
            break
        for row_id, data in rows:
            bind.execute(
                sa.text("UPDATE session_batches SET data = :data, codec = NULL WHERE id = :id"),
                {"data": zlib.decompress(data), "id": row_id},
            )
    with op.batch_alter_table("session_batches") as batch:
        batch.drop_column("codec")
