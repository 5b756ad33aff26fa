"""session_batches: a row whose batch the server deflated stays whole in its page (PostgreSQL)

Revision ID: 0008_session_batch_inline
Revises: 0007_session_batch_codec

Since this revision the server deflates a batch kept in its row on PostgreSQL too (as it did on
SQLite): ~2 KB for a 20 KB JSON batch. PostgreSQL's TOAST would still act on any row over
~2 KB (its fixed threshold): try to compress the deflated bytes again (in vain) and move them
to the TOAST table, two chunk rows and their index entries, each in the WAL. A
``toast_tuple_target`` of 8160 (the most a page takes) keeps rows up to that size whole in the
table, neither compressed nor moved; larger rows are still compressed (lz4) and moved as
before. Rows written before keep the form they were written in and read alike.
"""

from __future__ import annotations

from alembic import op

revision = "0008_session_batch_inline"
down_revision = "0007_session_batch_codec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE session_batches SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE session_batches RESET (toast_tuple_target)")
