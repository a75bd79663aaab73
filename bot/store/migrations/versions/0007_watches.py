"""Shoppers' watchlists: standing searches re-run after every reindex (bot/watch.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(200), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("chat_id", sa.String(160), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_skus", sa.Text(), nullable=False),
        sa.Column("pending_skus", sa.Text(), nullable=False),
    )
    op.create_index("ix_watches_user_id", "watches", ["user_id"])
    op.create_index("ix_watches_expires_at", "watches", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_watches_expires_at", table_name="watches")
    op.drop_index("ix_watches_user_id", table_name="watches")
    op.drop_table("watches")
