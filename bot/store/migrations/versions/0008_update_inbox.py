"""Telegram updates fetched by long polling, kept from the moment they are fetched: what a bot killed with updates
in flight answers after its restart (python-telegram-bot confirms an update to Telegram as soon as it is fetched),
and, once answered, only a digest of each, so that Telegram sending it again is not answered twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "update_inbox",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_update_inbox_user_id", "update_inbox", ["user_id"])
    op.create_index("ix_update_inbox_received_at", "update_inbox", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_update_inbox_received_at", table_name="update_inbox")
    op.drop_index("ix_update_inbox_user_id", table_name="update_inbox")
    op.drop_table("update_inbox")
